// One log line per event, as key=value pairs: "event=register result=ok node_id=A1". A value with
// blanks, quotes, '=' or a backslash is quoted (with \" and \\), so that a log shipper can split
// every line the same way.
#pragma once

#include <cstdint>
#include <string>

namespace agent::argus {

class EventLine {
public:
    explicit EventLine(const std::string& event) : text_("event=" + event) {}

    EventLine& add(const std::string& key, const std::string& value) {
        text_.append(" ").append(key).append("=").append(quoteIfNeeded(value));
        return *this;
    }
    EventLine& add(const std::string& key, std::uint64_t value) { return add(key, std::to_string(value)); }
    const std::string& text() const { return text_; }

private:
    static std::string quoteIfNeeded(const std::string& value) {
        bool plain = !value.empty();
        for (const char c : value) plain = plain && c > ' ' && c != '"' && c != '=' && c != '\\' && c != 0x7f;
        if (plain) return value;
        std::string quoted = "\"";
        for (const char c : value) {
            if (c == '"' || c == '\\') quoted += '\\';
            quoted += (c == '\n' || c == '\r') ? ' ' : c; // one event, one line
        }
        return quoted + '"';
    }

    std::string text_;
};

} // namespace agent::argus
