// Flattening TOML into Poco's configuration model. Tables become dotted prefixes; arrays of
// strings become JSON array strings (the SDK's list form); dates and arrays of tables have no
// use in the agent's configuration and are rejected with their line.
#include "TomlConfiguration.h"

#include <Poco/File.h>

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace agent {
namespace {

std::string position(const std::string& source, const toml::source_region& region) {
    return source + ":" + std::to_string(region.begin.line);
}

} // namespace

Poco::AutoPtr<TomlConfiguration> TomlConfiguration::fromFile(const std::string& path) {
    if (Poco::File(path).exists() && Poco::File(path).isDirectory())
        throw ConfigFileError(path + ": is a directory, not a config file");
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const bool exists = Poco::File(path).exists();
        throw ConfigFileError(path + ": " + (exists ? "cannot read the config file" : "config file not found"));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw ConfigFileError(path + ": error reading the config file");
    return fromString(text.str(), path);
}

Poco::AutoPtr<TomlConfiguration> TomlConfiguration::fromString(const std::string& text,
                                                               const std::string& sourceName) {
    Poco::AutoPtr<TomlConfiguration> config(new TomlConfiguration(sourceName));
    config->load(text);
    return config;
}

void TomlConfiguration::load(const std::string& text) {
    toml::table root;
    try {
        root = toml::parse(text, sourceName_);
    } catch (const toml::parse_error& error) {
        const auto& begin = error.source().begin;
        throw ConfigFileError(sourceName_ + ":" + std::to_string(begin.line) + ":" +
                              std::to_string(begin.column) + ": TOML syntax error: " +
                              std::string(error.description()));
    }

    // Recursive walk; `prefix` is the dotted path of the table being flattened.
    auto walk = [this](auto& self, const toml::table& table, const std::string& prefix) -> void {
        for (const auto& [tomlKey, node] : table) {
            const std::string name(tomlKey.str());
            const std::string where = position(sourceName_, node.source());
            if (name.find('.') != std::string::npos || name.empty())
                throw ConfigFileError(where + ": key \"" + name + "\" must not be empty or contain a dot");
            const std::string key = prefix.empty() ? name : prefix + "." + name;
            const int line = static_cast<int>(node.source().begin.line);
            if (prefix.empty() && !node.is_table())
                throw ConfigFileError(where + ": " + key + ": every key belongs in a [section]");

            if (const toml::table* sub = node.as_table()) {
                info_[key] = {line, ValueKind::Table};
                self(self, *sub, key);
            } else if (const auto* s = node.as_string()) {
                setRaw(key, s->get());
                info_[key] = {line, ValueKind::String};
            } else if (const auto* i = node.as_integer()) {
                setRaw(key, std::to_string(i->get()));
                info_[key] = {line, ValueKind::Integer};
            } else if (const auto* f = node.as_floating_point()) {
                std::ostringstream out;
                out.precision(17);
                out << f->get();
                setRaw(key, out.str());
                info_[key] = {line, ValueKind::Float};
            } else if (const auto* b = node.as_boolean()) {
                setRaw(key, b->get() ? "true" : "false");
                info_[key] = {line, ValueKind::Boolean};
            } else if (const toml::array* array = node.as_array()) {
                std::vector<std::string> items;
                bool allStrings = true;
                for (const toml::node& element : *array) {
                    if (const auto* s = element.as_string()) {
                        items.push_back(s->get());
                    } else if (element.is_integer() || element.is_floating_point() || element.is_boolean()) {
                        allStrings = false;
                        std::ostringstream out;
                        element.visit([&out](const auto& v) { out << v; });
                        items.push_back(out.str());
                    } else {
                        throw ConfigFileError(where + ": " + key + ": lists may hold only strings, numbers and booleans");
                    }
                }
                setRaw(key, formatStringList(items));
                info_[key] = {line, allStrings ? ValueKind::StringList : ValueKind::OtherList};
            } else {
                throw ConfigFileError(where + ": " + key + ": dates and times are not used by the agent");
            }
        }
    };
    walk(walk, root, "");
}

void TomlConfiguration::setFromCommandLine(const std::string& key, const std::string& value) {
    setRaw(key, value);
    info_[key] = {0, ValueKind::CommandLine};
    const auto dot = key.find('.');
    if (dot != std::string::npos && info_.find(key.substr(0, dot)) == info_.end())
        info_[key.substr(0, dot)] = {0, ValueKind::Table};
}

void TomlConfiguration::setDerived(const std::string& key, const std::string& value) {
    setRaw(key, value);
    info_[key] = {0, ValueKind::String, true};
    const auto dot = key.find('.');
    if (dot != std::string::npos && info_.find(key.substr(0, dot)) == info_.end())
        info_[key.substr(0, dot)] = {0, ValueKind::Table, true};
}

const TomlConfiguration::KeyInfo* TomlConfiguration::info(const std::string& key) const {
    auto it = info_.find(key);
    return it == info_.end() ? nullptr : &it->second;
}

std::string TomlConfiguration::locate(const std::string& key) const {
    const KeyInfo* keyInfo = info(key);
    if (keyInfo == nullptr) return {};
    if (keyInfo->derived) return sourceName_ + " (" + key + " derived from a Go agent's config)";
    if (keyInfo->kind == ValueKind::CommandLine || keyInfo->line == 0) return "command line (-D" + key + ")";
    return sourceName_ + ":" + std::to_string(keyInfo->line);
}

std::vector<std::string> TomlConfiguration::sections() const {
    std::vector<std::pair<int, std::string>> found;
    for (const auto& [key, keyInfo] : info_) {
        if (key.find('.') == std::string::npos) found.emplace_back(keyInfo.line, key);
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> names;
    for (auto& entry : found) names.push_back(std::move(entry.second));
    return names;
}

std::vector<std::string> TomlConfiguration::keysOf(const std::string& section) const {
    std::vector<std::string> keys;
    const std::string prefix = section + ".";
    for (auto it = info_.lower_bound(prefix); it != info_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        const std::string rest = it->first.substr(prefix.size());
        if (rest.find('.') == std::string::npos) keys.push_back(rest);
    }
    return keys;
}

} // namespace agent
