#include "LogRing.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <sstream>

namespace agent {
namespace {

const char* levelName(Poco::Message::Priority priority) {
    switch (priority) {
    case Poco::Message::PRIO_FATAL: return "fatal";
    case Poco::Message::PRIO_CRITICAL: return "critical";
    case Poco::Message::PRIO_ERROR: return "error";
    default: return "warning";
    }
}

// Cuts at `limit` bytes without splitting a UTF-8 sequence (the page shows it as text).
std::string cut(const std::string& text, std::size_t limit) {
    if (text.size() <= limit) return text;
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    return text.substr(0, end) + "…";
}

} // namespace

void LogRing::log(const Poco::Message& message) {
    if (message.getPriority() > Poco::Message::PRIO_WARNING) return; // notices, information, debug
    Entry entry;
    entry.time = static_cast<double>(message.getTime().epochMicroseconds() / 1000) / 1000.0;
    entry.priority = message.getPriority();
    entry.source = cut(message.getSource(), kMaxSource);
    entry.text = cut(message.getText(), kMaxText);
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back(std::move(entry));
    while (entries_.size() > capacity_) entries_.pop_front();
}

std::size_t LogRing::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
}

std::string LogRing::json() const {
    Poco::JSON::Array out;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const Entry& entry : entries_) {
            Poco::JSON::Object::Ptr object = new Poco::JSON::Object;
            object->set("time", entry.time);
            object->set("level", std::string(levelName(entry.priority)));
            object->set("source", entry.source);
            object->set("text", entry.text);
            out.add(object);
        }
    }
    std::ostringstream text;
    out.stringify(text);
    return text.str();
}

} // namespace agent
