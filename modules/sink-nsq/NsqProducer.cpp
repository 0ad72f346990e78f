// nsqd's TCP protocol V2, producer side, as nsq.io's "TCP Protocol Spec" describes it:
//   client: "  V2", then commands: "IDENTIFY\n" [size][JSON], "MPUB <topic>\n" [body size]
//           [message count] ([message size][message])..., "NOP\n"
//   server: frames [size][frame type][data], size counting the type's 4 bytes; type 0 response
//           ("OK", "_heartbeat_", the IDENTIFY JSON), 1 error ("E_CODE text"), 2 message.
// Every integer on the wire is 32-bit big-endian. Every error nsqd sends a producer is fatal:
// nsqd closes the connection right after the error frame.
#include "NsqProducer.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/NumberParser.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>

namespace agent::nsq {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kMagic = "  V2";
constexpr std::string_view kHeartbeat = "_heartbeat_";
constexpr std::int32_t kFrameResponse = 0;
constexpr std::int32_t kFrameError = 1;
constexpr std::int32_t kFrameMessage = 2;
// A producer only ever gets short responses; a bigger size means the stream is out of step.
constexpr std::uint32_t kMaxFrameBytes = 16 * 1024 * 1024;
constexpr std::size_t kMaxTopicLength = 64;
constexpr std::string_view kEphemeralSuffix = "#ephemeral";

// An error frame: nsqd refused the command ("E_BAD_TOPIC MPUB topic name ... is not valid").
class ServerError : public std::runtime_error {
public:
    ServerError(std::string code, const std::string& text) : std::runtime_error(text), code_(std::move(code)) {}
    const std::string& code() const { return code_; }

private:
    std::string code_;
};

// The server said something a producer cannot understand: the stream is out of step.
class ProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

void appendUint32(std::string& out, std::uint32_t value) {
    out.push_back(static_cast<char>((value >> 24) & 0xff));
    out.push_back(static_cast<char>((value >> 16) & 0xff));
    out.push_back(static_cast<char>((value >> 8) & 0xff));
    out.push_back(static_cast<char>(value & 0xff));
}

std::uint32_t readUint32(const char* bytes) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes);
    return (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) | std::uint32_t(b[3]);
}

bool isTopicChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

bool isRejection(const std::string& code) {
    return code == "E_BAD_TOPIC" || code == "E_BAD_BODY" || code == "E_BAD_MESSAGE";
}

std::string printable(const std::string& data) {
    std::string text = data.substr(0, 200);
    for (char& c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return text;
}

Poco::Timespan until(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
    return Poco::Timespan(std::max<long long>(left, 0));
}

} // namespace

bool isValidTopicName(std::string_view name) {
    if (name.empty() || name.size() > kMaxTopicLength) return false;
    if (name.size() > kEphemeralSuffix.size() &&
        name.substr(name.size() - kEphemeralSuffix.size()) == kEphemeralSuffix) {
        name.remove_suffix(kEphemeralSuffix.size());
    }
    return !name.empty() && std::all_of(name.begin(), name.end(), isTopicChar);
}

std::optional<ServerAddress> parseServerAddress(std::string_view text, std::string& error) {
    ServerAddress address;
    address.text = std::string(text);
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            error = "\"" + address.text + "\" is not [ipv6-address]:port";
            return std::nullopt;
        }
        address.host = std::string(text.substr(1, close - 1));
        port = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            error = "\"" + address.text + "\" has no port (host:port)";
            return std::nullopt;
        }
        address.host = std::string(text.substr(0, colon));
        if (address.host.find(':') != std::string::npos) {
            error = "\"" + address.text + "\": write an IPv6 address in brackets, [address]:port";
            return std::nullopt;
        }
        port = text.substr(colon + 1);
    }
    if (address.host.empty() || address.host.find_first_of(" \t/") != std::string::npos) {
        error = "\"" + address.text + "\" has no valid host (host:port)";
        return std::nullopt;
    }
    unsigned value = 0;
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        (value = static_cast<unsigned>(std::stoul(std::string(port)))) == 0 || value > 65535) {
        error = "\"" + address.text + "\" has no valid port (1 to 65535)";
        return std::nullopt;
    }
    address.port = static_cast<std::uint16_t>(value);
    return address;
}

std::size_t mpubBodySize(const std::vector<std::string>& messages, std::size_t first, std::size_t last) {
    std::size_t size = kMpubCountBytes;
    for (std::size_t i = first; i < last; ++i)
        size += kMpubSizeBytes + messages[i].size();
    return size;
}

std::vector<std::pair<std::size_t, std::size_t>> splitIntoMpubBodies(const std::vector<std::string>& messages,
                                                                     std::size_t maxBodyBytes) {
    std::vector<std::pair<std::size_t, std::size_t>> ranges;
    std::size_t first = 0;
    std::size_t size = kMpubCountBytes;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const std::size_t add = kMpubSizeBytes + messages[i].size();
        if (i > first && size + add > maxBodyBytes) {
            ranges.emplace_back(first, i);
            first = i;
            size = kMpubCountBytes;
        }
        size += add;
    }
    if (first < messages.size()) ranges.emplace_back(first, messages.size());
    return ranges;
}

const char* toString(PublishResult::Status status) {
    switch (status) {
    case PublishResult::Status::Published:
        return "published";
    case PublishResult::Status::Rejected:
        return "rejected";
    case PublishResult::Status::Failed:
        return "failed";
    }
    return "?";
}

// Call from a catch block: classifies the exception in flight as nsqd's error code, "protocol",
// "timeout" or `networkCode`, and describes it, naming the server (and `context` for network
// failures, e.g. "connect" or "MPUB <topic>").
void describeFailure(const std::string& server, const std::string& context, const char* networkCode,
                     std::string& code, std::string& error) {
    try {
        throw;
    } catch (const ServerError& e) {
        code = e.code();
        error = server + ": " + e.what();
    } catch (const ProtocolError& e) {
        code = "protocol";
        error = server + ": " + e.what();
    } catch (const Poco::TimeoutException& e) {
        code = "timeout";
        error = server + ": " + context + ": " + e.displayText();
    } catch (const Poco::Exception& e) {
        code = networkCode;
        error = server + ": " + context + ": " + e.displayText();
    }
}

// One open, identified connection to one nsqd. Throws ServerError, ProtocolError or a Poco
// exception (network errors, Poco::TimeoutException); whoever catches one drops the connection.
class NsqConnection {
public:
    NsqConnection(const ServerAddress& address, const ProducerOptions& options, ProducerStats& stats)
        : address_(address), options_(options), stats_(stats) {
        const Clock::time_point deadline = Clock::now() + options_.timeout;
        socket_.connect(Poco::Net::SocketAddress(address_.host, address_.port), until(deadline));
        socket_.setNoDelay(true);
        std::string hello(kMagic);
        hello += "IDENTIFY\n";
        const std::string identify = identifyBody();
        appendUint32(hello, static_cast<std::uint32_t>(identify.size()));
        hello += identify;
        sendAll(hello, deadline);
        readIdentifyResponse(awaitResponse(deadline));
    }

    ~NsqConnection() {
        try {
            socket_.close();
        } catch (const Poco::Exception&) {
            // close() of a connected socket only fails when it already is closed
        }
    }

    std::size_t advertisedMaxMessageBytes() const { return advertisedMaxMessageBytes_; }
    const std::string& serverVersion() const { return serverVersion_; }

    // Reads what arrived while the connection was idle, answering heartbeats. False when the
    // server closed it (nsqd does after two unanswered heartbeats) or sent anything else.
    bool drainIdle() {
        try {
            while (socket_.poll(Poco::Timespan(0), Poco::Net::Socket::SELECT_READ)) {
                const Frame frame = readFrame(Clock::now() + options_.timeout);
                if (frame.type != kFrameResponse || frame.data != kHeartbeat) return false;
                answerHeartbeat();
            }
            return true;
        } catch (const Poco::Exception&) {
            return false; // closed or reset: the caller reconnects
        } catch (const ProtocolError&) {
            return false; // out of step: the caller reconnects
        }
    }

    void mpub(const std::string& topic, const std::vector<std::string>& messages, std::size_t first, std::size_t last) {
        const Clock::time_point deadline = Clock::now() + options_.timeout;
        const std::size_t bodySize = mpubBodySize(messages, first, last);
        std::string command;
        command.reserve(6 + topic.size() + 4 + bodySize);
        command += "MPUB ";
        command += topic;
        command += '\n';
        appendUint32(command, static_cast<std::uint32_t>(bodySize));
        appendUint32(command, static_cast<std::uint32_t>(last - first));
        for (std::size_t i = first; i < last; ++i) {
            appendUint32(command, static_cast<std::uint32_t>(messages[i].size()));
            command += messages[i];
        }
        try {
            sendAll(command, deadline);
        } catch (const Poco::Exception&) {
            // nsqd answers a bad topic or size before reading the body, then closes: the error
            // frame that explains the broken send may be waiting. If not, the send's error stands.
            if (std::optional<Frame> frame = waitingErrorFrame(deadline)) throwServerError(frame->data);
            throw;
        }
        const std::string reply = awaitResponse(deadline);
        if (reply != "OK") throw ProtocolError("MPUB answered with \"" + printable(reply) + "\" instead of OK");
    }

private:
    struct Frame {
        std::int32_t type = 0;
        std::string data;
    };

    std::string identifyBody() const {
        Poco::JSON::Object body;
        body.set("client_id", options_.clientId);
        body.set("hostname", options_.hostname);
        body.set("user_agent", options_.userAgent);
        body.set("heartbeat_interval", static_cast<Poco::Int64>(options_.heartbeatInterval.count()));
        body.set("feature_negotiation", true);
        std::ostringstream out;
        body.stringify(out);
        return out.str();
    }

    void readIdentifyResponse(const std::string& data) {
        if (data == "OK") return; // a server without feature negotiation
        bool authRequired = false;
        std::string unasked;
        Poco::Int64 maxMessage = 0;
        try {
            Poco::JSON::Object::Ptr response = Poco::JSON::Parser().parse(data).extract<Poco::JSON::Object::Ptr>();
            serverVersion_ = response->optValue<std::string>("version", "");
            authRequired = response->optValue<bool>("auth_required", false);
            for (const char* feature : {"tls_v1", "snappy", "deflate"}) {
                if (response->optValue<bool>(feature, false)) unasked = feature;
            }
            maxMessage = response->optValue<Poco::Int64>("max_msg_size", 0);
        } catch (const Poco::Exception& e) {
            throw ProtocolError("IDENTIFY answered with neither OK nor the JSON of feature negotiation (" +
                                e.displayText() + "): " + printable(data));
        }
        if (authRequired) throw ProtocolError("the server requires AUTH, which sink-nsq does not speak");
        if (!unasked.empty()) throw ProtocolError("the server turned on " + unasked + ", which was not asked for");
        if (maxMessage > 0) advertisedMaxMessageBytes_ = static_cast<std::size_t>(maxMessage);
    }

    void answerHeartbeat() {
        sendAll("NOP\n", Clock::now() + options_.timeout);
        ++stats_.heartbeatsAnswered;
    }

    [[noreturn]] static void throwServerError(const std::string& data) {
        const std::string text = printable(data);
        throw ServerError(text.substr(0, text.find(' ')), text);
    }

    // Reads frames until a response that is not a heartbeat, answering heartbeats with NOP.
    std::string awaitResponse(Clock::time_point deadline) {
        for (;;) {
            Frame frame = readFrame(deadline);
            if (frame.type == kFrameError) throwServerError(frame.data);
            if (frame.type == kFrameMessage) throw ProtocolError("a message frame on a producer's connection");
            if (frame.type != kFrameResponse) throw ProtocolError("unknown frame type " + std::to_string(frame.type));
            if (frame.data == kHeartbeat) {
                answerHeartbeat();
                continue;
            }
            return std::move(frame.data);
        }
    }

    // An error frame that already arrived (within a short grace), or nothing; any failure to read
    // one counts as nothing, since the caller reports its own error then.
    std::optional<Frame> waitingErrorFrame(Clock::time_point deadline) {
        try {
            Frame frame = readFrame(std::min(deadline, Clock::now() + std::chrono::milliseconds(200)));
            if (frame.type == kFrameError) return frame;
        } catch (const Poco::Exception&) {
            // nothing readable: the failed send's own error is the one the caller reports
        } catch (const ProtocolError&) {
            // no frame but garbage: likewise
        }
        return std::nullopt;
    }

    Frame readFrame(Clock::time_point deadline) {
        char header[8];
        readExact(header, sizeof header, deadline);
        const std::uint32_t size = readUint32(header);
        if (size < 4 || size > kMaxFrameBytes) throw ProtocolError("frame of impossible size " + std::to_string(size));
        Frame frame;
        frame.type = static_cast<std::int32_t>(readUint32(header + 4));
        frame.data.resize(size - 4);
        readExact(frame.data.data(), frame.data.size(), deadline);
        return frame;
    }

    void readExact(char* buffer, std::size_t size, Clock::time_point deadline) {
        std::size_t got = 0;
        while (got < size) {
            if (!socket_.poll(until(deadline), Poco::Net::Socket::SELECT_READ))
                throw Poco::TimeoutException("no answer from " + address_.text + " within " +
                                             std::to_string(options_.timeout.count()) + " ms");
            const int n =
                socket_.receiveBytes(buffer + got, static_cast<int>(std::min<std::size_t>(size - got, INT_MAX)));
            if (n <= 0) throw Poco::Net::ConnectionResetException("connection closed by " + address_.text);
            got += static_cast<std::size_t>(n);
        }
    }

    void sendAll(std::string_view data, Clock::time_point deadline) {
        std::size_t sent = 0;
        while (sent < data.size()) {
            const Poco::Timespan left = until(deadline);
            if (left.totalMicroseconds() <= 0)
                throw Poco::TimeoutException("sending to " + address_.text + " took more than " +
                                             std::to_string(options_.timeout.count()) + " ms");
            socket_.setSendTimeout(left);
            // MSG_NOSIGNAL: a peer that went away must be an error here, not a SIGPIPE for the agent.
            const int n = socket_.sendBytes(
                data.data() + sent, static_cast<int>(std::min<std::size_t>(data.size() - sent, INT_MAX)), MSG_NOSIGNAL);
            if (n <= 0) throw Poco::Net::ConnectionResetException("connection closed by " + address_.text);
            sent += static_cast<std::size_t>(n);
        }
    }

    const ServerAddress& address_;
    const ProducerOptions& options_;
    ProducerStats& stats_;
    Poco::Net::StreamSocket socket_;
    std::size_t advertisedMaxMessageBytes_ = 0;
    std::string serverVersion_;
};

struct NsqProducer::ServerState {
    ServerAddress address;
    std::unique_ptr<NsqConnection> connection;
    bool failed = false;
    Clock::time_point failedAt{};
};

NsqProducer::NsqProducer(ProducerOptions options, Poco::Logger& logger)
    : options_(std::move(options)), logger_(logger) {
    if (options_.servers.empty()) throw std::invalid_argument("NsqProducer needs at least one server");
    for (const ServerAddress& address : options_.servers)
        servers_.push_back(ServerState{address, nullptr});
    triedInBatch_.assign(servers_.size(), false);
}

NsqProducer::~NsqProducer() = default;

bool NsqProducer::coolingDown(const ServerState& server, Clock::time_point now) const {
    return server.failed && now - server.failedAt < options_.serverCooldown;
}

std::size_t NsqProducer::maxMessageBytes() const {
    std::size_t limit = std::min(options_.maxMessageBytes, options_.maxBodyBytes - kMpubCountBytes - kMpubSizeBytes);
    if (advertisedMaxMessageBytes_ > 0) limit = std::min(limit, advertisedMaxMessageBytes_);
    return limit;
}

bool NsqProducer::beginBatch(std::string& error) {
    const Clock::time_point now = Clock::now();
    const std::size_t count = servers_.size();
    std::vector<std::size_t> order;
    std::vector<std::size_t> cooling;
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t index = (nextStart_ + i) % count;
        (coolingDown(servers_[index], now) ? cooling : order).push_back(index);
    }
    std::stable_sort(cooling.begin(), cooling.end(),
                     [this](std::size_t a, std::size_t b) { return servers_[a].failedAt < servers_[b].failedAt; });
    order.insert(order.end(), cooling.begin(), cooling.end());
    nextStart_ = (nextStart_ + 1) % count;

    triedInBatch_.assign(count, false);
    error.clear();
    for (std::size_t index : order) {
        triedInBatch_[index] = true;
        current_ = index;
        std::string reason;
        std::string code;
        if (ensureConnected(index, code, reason)) return true;
        error += (error.empty() ? "" : "; ") + reason;
    }
    return false;
}

bool NsqProducer::ensureConnected(std::size_t index, std::string& code, std::string& error) {
    ServerState& server = servers_[index];
    if (server.connection) {
        if (server.connection->drainIdle()) return true;
        logger_.debug("connection to %s was closed by the server while idle; reconnecting", server.address.text);
        server.connection.reset();
    }
    try {
        auto connection = std::make_unique<NsqConnection>(server.address, options_, stats_);
        ++stats_.connects;
        if (const std::size_t advertised = connection->advertisedMaxMessageBytes(); advertised > 0) {
            advertisedMaxMessageBytes_ =
                advertisedMaxMessageBytes_ == 0 ? advertised : std::min(advertisedMaxMessageBytes_, advertised);
        }
        const std::string version =
            connection->serverVersion().empty() ? "" : " (nsqd " + connection->serverVersion() + ")";
        if (server.failed)
            logger_.information("%s is back%s", server.address.text, version);
        else
            logger_.information("connected to %s%s", server.address.text, version);
        server.failed = false;
        server.connection = std::move(connection);
        return true;
    } catch (const std::exception&) {
        describeFailure(server.address.text, "connect", "connect", code, error);
    }
    markFailed(index, code, error);
    return false;
}

bool NsqProducer::failOver(std::string& errors) {
    const std::size_t count = servers_.size();
    for (std::size_t i = 1; i <= count; ++i) {
        const std::size_t index = (current_ + i) % count;
        if (triedInBatch_[index]) continue;
        triedInBatch_[index] = true;
        current_ = index;
        std::string code;
        std::string reason;
        if (ensureConnected(index, code, reason)) return true;
        errors += "; " + reason;
    }
    return false;
}

void NsqProducer::countError(const std::string& code, const std::string& error) {
    ++stats_.errors[code.empty() ? std::string("unknown") : code];
    stats_.lastError = error;
    stats_.lastErrorTime = static_cast<std::int64_t>(std::time(nullptr));
}

void NsqProducer::markFailed(std::size_t index, const std::string& code, const std::string& error) {
    ServerState& server = servers_[index];
    countError(code, error);
    server.connection.reset();
    // The first failure of an outage is a warning; while it lasts, the core's retries say enough.
    if (server.failed)
        logger_.debug("%s", error);
    else
        logger_.warning("%s; trying the next server, and this one again in %.1f s", error,
                        static_cast<double>(options_.serverCooldown.count()) / 1000.0);
    server.failed = true;
    server.failedAt = Clock::now();
}

PublishResult NsqProducer::publish(const std::string& topic, const std::vector<std::string>& messages,
                                   std::size_t first, std::size_t last) {
    PublishResult result;
    std::string failures;
    for (;;) {
        ServerState& server = servers_[current_];
        result.server = server.address.text;
        std::string code;
        std::string error;
        if (server.connection || ensureConnected(current_, code, error)) {
            const std::size_t advertised = server.connection->advertisedMaxMessageBytes();
            const bool tooBig =
                advertised > 0 && std::any_of(messages.begin() + first, messages.begin() + last,
                                              [advertised](const std::string& m) { return m.size() > advertised; });
            if (tooBig) {
                // Encoded before this server told its limit; the next batch is encoded for it.
                result.code = "message_too_big_for_server";
                result.error =
                    server.address.text + " takes messages of at most " + std::to_string(advertised) + " bytes";
                countError(result.code, result.error);
                return result;
            }
            try {
                server.connection->mpub(topic, messages, first, last);
                ++stats_.mpubCommands;
                stats_.messagesPublished += last - first;
                for (std::size_t i = first; i < last; ++i)
                    stats_.bytesPublished += messages[i].size();
                result.status = PublishResult::Status::Published;
                return result;
            } catch (const std::exception&) {
                describeFailure(server.address.text, "MPUB " + topic, "network", code, error);
            }
            if (isRejection(code)) {
                server.connection.reset(); // nsqd closed it after the error frame
                countError(code, error);
                logger_.error("%s", error);
                result.status = PublishResult::Status::Rejected;
                result.code = code;
                result.error = error;
                return result;
            }
            markFailed(current_, code, error);
        }
        failures += (failures.empty() ? "" : "; ") + error;
        result.code = code;
        if (!failOver(failures)) {
            result.status = PublishResult::Status::Failed;
            result.error = failures;
            return result;
        }
    }
}

void NsqProducer::close() {
    for (ServerState& server : servers_)
        server.connection.reset();
}

std::string NsqProducer::connectedServer() const {
    const ServerState& server = servers_[current_];
    return server.connection ? server.address.text : std::string();
}

} // namespace agent::nsq
