// The last warnings and errors of the log, kept in memory for the status page (GET /me/log): a
// Poco Channel next to the log file's (core/src/Logging.cpp) that keeps the newest `capacity` (100)
// messages at warning level or worse. Each text is cut at kMaxText bytes, so the ring holds at
// most about capacity × (kMaxText + kMaxSource) bytes plus overhead, about 430 KiB.
#pragma once

#include <Poco/Channel.h>
#include <Poco/Message.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace agent {

class LogRing : public Poco::Channel {
public:
    static constexpr std::size_t kMaxText = 4096;
    static constexpr std::size_t kMaxSource = 128;

    explicit LogRing(std::size_t capacity = 100) : capacity_(capacity) {}

    void log(const Poco::Message& message) override;

    // [{"time": seconds with milliseconds, "level": "warning"|"error"|"critical"|"fatal",
    //   "source": logger name, "text": ...}, ...], oldest first.
    std::string json() const;
    std::size_t size() const;

private:
    struct Entry {
        double time = 0;
        Poco::Message::Priority priority = Poco::Message::PRIO_WARNING;
        std::string source;
        std::string text;
    };
    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::deque<Entry> entries_;
};

} // namespace agent
