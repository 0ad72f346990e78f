#include "DisabledPlugins.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace agent::exec {

DisabledPlugins::DisabledPlugins(std::string file, std::chrono::seconds ttl) : file_(std::move(file)), ttl_(ttl) {}

std::string DisabledPlugins::load() {
    std::ifstream in(file_, std::ios::binary);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    std::lock_guard<std::mutex> lock(mutex_);
    until_.clear();
    try {
        Poco::JSON::Parser parser;
        const auto object = parser.parse(text.str()).extract<Poco::JSON::Object::Ptr>();
        for (const auto& [key, value] : *object) until_[key] = value.convert<std::int64_t>();
    } catch (const Poco::Exception& e) {
        until_.clear();
        return file_ + ": " + e.displayText() + "; every plugin is enabled";
    }
    return {};
}

void DisabledPlugins::expireLocked(std::int64_t now) {
    for (auto it = until_.begin(); it != until_.end();) it = it->second <= now ? until_.erase(it) : std::next(it);
}

bool DisabledPlugins::isDisabled(const std::string& ns, const std::string& project, std::int64_t now) {
    return disabledUntil(ns, project, now) != 0;
}

std::int64_t DisabledPlugins::disabledUntil(const std::string& ns, const std::string& project, std::int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    expireLocked(now);
    auto it = until_.find(keyOf(ns, project));
    return it == until_.end() ? 0 : it->second;
}

std::string DisabledPlugins::disable(const std::string& ns, const std::string& project, std::int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    expireLocked(now);
    until_[keyOf(ns, project)] = now + ttl_.count();
    return saveLocked();
}

std::string DisabledPlugins::enable(const std::string& ns, const std::string& project) {
    std::lock_guard<std::mutex> lock(mutex_);
    until_.erase(keyOf(ns, project));
    return saveLocked();
}

std::string DisabledPlugins::saveLocked() const {
    Poco::JSON::Object object;
    for (const auto& [key, until] : until_) object.set(key, until);
    const std::string temporary = file_ + ".tmp";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        object.stringify(out);
        if (!out) return "cannot write " + temporary;
    }
    if (std::rename(temporary.c_str(), file_.c_str()) != 0) return "cannot rename " + temporary + " to " + file_;
    return {};
}

} // namespace agent::exec
