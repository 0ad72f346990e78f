// The publishing side of nsqd's TCP protocol V2: one connection per server (magic "  V2",
// IDENTIFY with feature negotiation), MPUB and its OK, heartbeats answered with NOP while waiting,
// error frames read with their code. Spreads batches over the servers in turn, fails over when
// one cannot be reached or answers with a failure, and comes back to it after a cooldown.
// It never sleeps and never retries a batch later: the caller (the core) owns backoff.
#pragma once

#include <Poco/Logger.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agent::nsq {

// nsqd's defaults for --max-msg-size and --max-body-size.
inline constexpr std::size_t kDefaultMaxMessageBytes = 1'048'576;
inline constexpr std::size_t kDefaultMaxBodyBytes = 5'242'880;
// An MPUB body is [message count][size][message]...: 4 bytes, then 4 more per message.
inline constexpr std::size_t kMpubCountBytes = 4;
inline constexpr std::size_t kMpubSizeBytes = 4;

// nsqd's rule: [.a-zA-Z0-9_-]+, optionally followed by "#ephemeral", 1 to 64 characters in all.
bool isValidTopicName(std::string_view name);

struct ServerAddress {
    std::string host; // without the brackets of an IPv6 literal
    std::uint16_t port = 0;
    std::string text; // as configured, for logs and health
};

// "host:port" or "[ipv6]:port"; nothing is resolved here. On failure returns nothing and says why.
std::optional<ServerAddress> parseServerAddress(std::string_view text, std::string& error);

// The index ranges [first, last) of `messages` that go into one MPUB each, in order, so that
// every MPUB body stays within maxBodyBytes. A message that alone exceeds the body limit is a bug
// of the caller (the encoder keeps messages below it) and gets a range of its own.
std::vector<std::pair<std::size_t, std::size_t>> splitIntoMpubBodies(const std::vector<std::string>& messages,
                                                                     std::size_t maxBodyBytes);
std::size_t mpubBodySize(const std::vector<std::string>& messages, std::size_t first, std::size_t last);

struct ProducerOptions {
    std::vector<ServerAddress> servers;
    std::string clientId;
    std::string hostname;
    std::string userAgent;
    std::chrono::milliseconds timeout{5000};            // connect + IDENTIFY, and each MPUB until its OK
    std::chrono::milliseconds heartbeatInterval{30000}; // asked for in IDENTIFY
    std::chrono::milliseconds serverCooldown{30000};    // a failed server is tried last for this long
    std::size_t maxMessageBytes = kDefaultMaxMessageBytes;
    std::size_t maxBodyBytes = kDefaultMaxBodyBytes;
};

// What one MPUB came to.
struct PublishResult {
    enum class Status {
        Published, // the server answered OK
        Rejected,  // E_BAD_TOPIC, E_BAD_BODY or E_BAD_MESSAGE: the data is malformed for nsqd
        Failed,    // no server took it: network errors, timeouts, E_MPUB_FAILED, E_INVALID, ...
    };
    Status status = Status::Failed;
    std::string code;   // nsqd's error code, or connect / network / timeout / protocol; "" when published
    std::string error;  // the whole error text; "" when published
    std::string server; // the server that answered last
};

const char* toString(PublishResult::Status status);

struct ProducerStats {
    std::uint64_t mpubCommands = 0; // MPUBs answered OK
    std::uint64_t messagesPublished = 0;
    std::uint64_t bytesPublished = 0; // message bytes
    std::uint64_t connects = 0;       // connections opened (IDENTIFY answered)
    std::uint64_t heartbeatsAnswered = 0;
    std::map<std::string, std::uint64_t> errors; // by code
    std::string lastError;
    std::int64_t lastErrorTime = 0; // seconds since the epoch
};

class NsqConnection;

class NsqProducer {
public:
    NsqProducer(ProducerOptions options, Poco::Logger& logger);
    ~NsqProducer();
    NsqProducer(const NsqProducer&) = delete;
    NsqProducer& operator=(const NsqProducer&) = delete;

    // Starts a batch on the next server in turn: servers that failed less than serverCooldown ago
    // come last (in the order they failed), so a recovered server is used again once its cooldown
    // is over. Reuses that server's connection when it is still open, else connects, failing over
    // to the next server. False (with the reasons in `error`) when no server could be reached.
    bool beginBatch(std::string& error);

    // The largest message and MPUB body to encode for: the configured limits, lowered by what a
    // server advertised in its IDENTIFY response (max_msg_size), never above the body limit less
    // one message's framing.
    std::size_t maxMessageBytes() const;
    std::size_t maxBodyBytes() const { return options_.maxBodyBytes; }

    // Publishes messages [first, last) to `topic` with one MPUB on the batch's server and waits for
    // its OK (answering heartbeats meanwhile). After an error frame nsqd closes the connection; so
    // does this, and the next publish reconnects. A failure fails over to the servers not yet tried
    // in this batch, sending the same MPUB again (so a message may arrive twice, never not at all).
    PublishResult publish(const std::string& topic, const std::vector<std::string>& messages, std::size_t first,
                          std::size_t last);

    // Closes every connection (a producer has nothing to flush: each MPUB waited for its OK).
    void close();

    // The server of the current batch when connected to it, else "".
    std::string connectedServer() const;
    const ProducerStats& stats() const { return stats_; }

private:
    struct ServerState;
    using Clock = std::chrono::steady_clock;

    bool coolingDown(const ServerState& server, Clock::time_point now) const;
    // Connects to server `index` unless its connection is open and healthy; on failure marks the
    // server failed and returns false with the error's code and text.
    bool ensureConnected(std::size_t index, std::string& code, std::string& error);
    // Moves the batch to the next server not yet tried in it; false when none is left.
    bool failOver(std::string& errors);
    void markFailed(std::size_t index, const std::string& code, const std::string& error);
    void countError(const std::string& code, const std::string& error);

    ProducerOptions options_;
    Poco::Logger& logger_;
    std::vector<ServerState> servers_;
    std::size_t current_ = 0;   // the server of the current batch
    std::size_t nextStart_ = 0; // where the next batch starts looking
    std::vector<bool> triedInBatch_;
    std::size_t advertisedMaxMessageBytes_ = 0; // smallest max_msg_size a server advertised; 0 = none
    ProducerStats stats_;
};

using NsqProducerPtr = std::unique_ptr<NsqProducer>;

} // namespace agent::nsq
