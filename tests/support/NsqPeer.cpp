// The nsqd stand-in: protocol V2 server side, as nsq.io's "TCP Protocol Spec" and nsqd's own
// checks describe it (sizes are 32-bit big-endian; frames are [size][type][data], size counting
// the type; every error a publisher can get is fatal and ends the connection).
#include "NsqPeer.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <sys/socket.h>
#include <utility>

namespace agent::test {
namespace {

constexpr std::int32_t kFrameResponse = 0;
constexpr std::int32_t kFrameError = 1;
constexpr std::chrono::milliseconds kPollStep{10};
constexpr std::chrono::milliseconds kDefaultHeartbeat{30000}; // nsqd: half its 60 s client timeout
constexpr std::chrono::seconds kNopWait{5};
constexpr std::chrono::milliseconds kLinger{500};
constexpr std::size_t kMaxCommandLine = 4096;
constexpr std::chrono::seconds kScriptTimeout{10};

void appendUint32(std::string& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((value >> shift) & 0xff));
}

std::int32_t readInt32(const std::string& data, std::size_t at) {
    const auto* b = reinterpret_cast<const unsigned char*>(data.data() + at);
    return static_cast<std::int32_t>((std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) |
                                     (std::uint32_t(b[2]) << 8) | std::uint32_t(b[3]));
}

// nsqd's protocol.IsValidTopicName: ^[.a-zA-Z0-9_-]+(#ephemeral)?$, 1 to 64 characters.
bool isValidTopic(std::string_view name) {
    constexpr std::string_view kEphemeral = "#ephemeral";
    if (name.empty() || name.size() > 64) return false;
    if (name.size() > kEphemeral.size() && name.substr(name.size() - kEphemeral.size()) == kEphemeral)
        name.remove_suffix(kEphemeral.size());
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
    });
}

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const std::size_t space = line.find(' ', start);
        parts.push_back(line.substr(start, space - start));
        if (space == std::string::npos) return parts;
        start = space + 1;
    }
}

} // namespace

struct NsqPeer::Connection {
    explicit Connection(Poco::Net::StreamSocket s) : socket(std::move(s)) {}
    Poco::Net::StreamSocket socket;
    std::thread thread;
    bool closeRequested = false; // guarded by the peer's mutex_
    bool done = false;           // guarded by the peer's mutex_
};

class NsqPeer::Session {
public:
    Session(NsqPeer& peer, Connection& connection)
        : peer_(peer), connection_(connection), socket_(connection.socket),
          heartbeatInterval_(peer.options_.heartbeatInterval.count() > 0 ? peer.options_.heartbeatInterval
                                                                         : kDefaultHeartbeat),
          nextHeartbeat_(Clock::now() + heartbeatInterval_) {}

    void run() {
        try {
            serve();
        } catch (const Poco::IOException&) {
            // the client went away (reset, broken pipe): an ordinary end of a connection
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(peer_.mutex_);
            if (peer_.internalError_.empty()) peer_.internalError_ = e.what();
        }
        try {
            socket_.close();
        } catch (const Poco::Exception&) {
            // already closed by the client's reset
        }
    }

private:
    enum class Step { Continue, NeedMore, Close };

    void serve() {
        char buffer[64 * 1024];
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(peer_.mutex_);
                if (connection_.closeRequested || peer_.shutdown_) return;
            }
            const Clock::time_point now = Clock::now();
            if (awaitingNop_ && now >= okDeadline_) acknowledge(); // no NOP came; nsqd would not wait either
            if (heartbeatInterval_.count() > 0 && now >= nextHeartbeat_) {
                sendHeartbeat();
                nextHeartbeat_ = now + heartbeatInterval_;
            }
            if (socket_.poll(Poco::Timespan(std::chrono::microseconds(kPollStep).count()),
                             Poco::Net::Socket::SELECT_READ)) {
                const int n = socket_.receiveBytes(buffer, sizeof buffer);
                if (n <= 0) return; // the client closed
                input_.append(buffer, static_cast<std::size_t>(n));
            }
            Step step = Step::Continue;
            while (step == Step::Continue)
                step = next();
            if (step == Step::Close) {
                lingeringClose();
                return;
            }
        }
    }

    // Handles one command at the start of input_; NeedMore when it has not fully arrived.
    Step next() {
        if (!magicChecked_) {
            if (input_.size() < 4) return Step::NeedMore;
            if (input_.compare(0, 4, "  V2") != 0) return fatal("E_BAD_PROTOCOL");
            input_.erase(0, 4);
            magicChecked_ = true;
            return Step::Continue;
        }
        const std::size_t newline = input_.find('\n');
        if (newline == std::string::npos)
            return input_.size() > kMaxCommandLine ? fatal("E_INVALID command line too long") : Step::NeedMore;
        std::string line = input_.substr(0, newline);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const std::vector<std::string> params = split(line);
        const std::string& command = params.front();
        if (command == "NOP") {
            input_.erase(0, newline + 1);
            {
                std::lock_guard<std::mutex> lock(peer_.mutex_);
                ++peer_.nops_;
            }
            if (awaitingNop_) acknowledge();
            return Step::Continue;
        }
        if (command == "IDENTIFY") return identify(newline);
        if (command == "PUB") return publish(params, newline, false);
        if (command == "MPUB") return publish(params, newline, true);
        if (command == "CLS") return fatal("E_INVALID cannot CLS in current state");
        return fatal("E_INVALID invalid command " + command);
    }

    Step identify(std::size_t newline) {
        if (input_.size() < newline + 5) return Step::NeedMore;
        const std::int32_t size = readInt32(input_, newline + 1);
        if (static_cast<std::int64_t>(size) > static_cast<std::int64_t>(peer_.options_.maxBodyBytes))
            return fatal("E_BAD_BODY IDENTIFY body too big " + std::to_string(size) + " > " +
                         std::to_string(peer_.options_.maxBodyBytes));
        if (size <= 0) return fatal("E_BAD_BODY IDENTIFY invalid body size " + std::to_string(size));
        if (input_.size() < newline + 5 + static_cast<std::size_t>(size)) return Step::NeedMore;
        const std::string body = input_.substr(newline + 5, static_cast<std::size_t>(size));
        input_.erase(0, newline + 5 + static_cast<std::size_t>(size));
        if (identified_) return fatal("E_INVALID cannot IDENTIFY in current state");

        Poco::Int64 heartbeat = 0;
        bool negotiate = false;
        try {
            Poco::JSON::Object::Ptr identify = Poco::JSON::Parser().parse(body).extract<Poco::JSON::Object::Ptr>();
            heartbeat = identify->optValue<Poco::Int64>("heartbeat_interval", 0);
            negotiate = identify->optValue<bool>("feature_negotiation", false);
        } catch (const Poco::Exception&) {
            return fatal("E_BAD_BODY IDENTIFY failed to decode JSON body");
        }
        // nsqd: -1 turns heartbeats off, 0 keeps the default, else 1 s up to --max-heartbeat-interval.
        if (heartbeat < -1 || (heartbeat > 0 && heartbeat < 1000) || heartbeat > 60000)
            return fatal("E_BAD_BODY IDENTIFY heartbeat interval (" + std::to_string(heartbeat) + ") is invalid");
        {
            std::lock_guard<std::mutex> lock(peer_.mutex_);
            peer_.identifyBodies_.push_back(body);
        }
        identified_ = true;
        if (peer_.options_.heartbeatInterval.count() == 0) {
            heartbeatInterval_ = heartbeat == -1  ? std::chrono::milliseconds(0)
                                 : heartbeat == 0 ? kDefaultHeartbeat
                                                  : std::chrono::milliseconds(heartbeat);
            nextHeartbeat_ = Clock::now() + heartbeatInterval_;
        }
        if (!negotiate) {
            sendFrame(kFrameResponse, "OK");
            return Step::Continue;
        }
        Poco::JSON::Object response;
        response.set("max_rdy_count", 2500);
        response.set("version", "1.2.1-nsqpeer");
        response.set("max_msg_timeout", 900000);
        response.set("msg_timeout", 60000);
        response.set("tls_v1", false);
        response.set("deflate", false);
        response.set("deflate_level", 6);
        response.set("max_deflate_level", 6);
        response.set("snappy", false);
        response.set("sample_rate", 0);
        response.set("auth_required", false);
        response.set("output_buffer_size", 16384);
        response.set("output_buffer_timeout", 250);
        if (peer_.options_.advertisedMaxMessageBytes > 0)
            response.set("max_msg_size", static_cast<Poco::UInt64>(peer_.options_.advertisedMaxMessageBytes));
        std::ostringstream text;
        response.stringify(text);
        sendFrame(kFrameResponse, text.str());
        return Step::Continue;
    }

    Step publish(const std::vector<std::string>& params, std::size_t newline, bool multi) {
        const std::string name = multi ? "MPUB" : "PUB";
        const std::int64_t maxMessage = static_cast<std::int64_t>(peer_.options_.maxMessageBytes);
        const std::int64_t maxBody = static_cast<std::int64_t>(peer_.options_.maxBodyBytes);
        if (params.size() < 2) return fatal("E_INVALID " + name + " insufficient number of parameters");
        const std::string& topic = params[1];
        // Like nsqd: the topic is checked before the body is read.
        if (!isValidTopic(topic)) return fatal("E_BAD_TOPIC " + name + " topic name \"" + topic + "\" is not valid");
        if (input_.size() < newline + 5) return Step::NeedMore;
        const std::int32_t bodySize = readInt32(input_, newline + 1);
        if (multi) {
            if (bodySize <= 0) return fatal("E_BAD_BODY MPUB invalid body size " + std::to_string(bodySize));
            if (bodySize > maxBody)
                return fatal("E_BAD_BODY MPUB body too big " + std::to_string(bodySize) + " > " +
                             std::to_string(maxBody));
        } else {
            if (bodySize <= 0) return fatal("E_BAD_MESSAGE PUB invalid message body size " + std::to_string(bodySize));
            if (bodySize > maxMessage)
                return fatal("E_BAD_MESSAGE PUB message too big " + std::to_string(bodySize) + " > " +
                             std::to_string(maxMessage));
        }
        if (input_.size() < newline + 5 + static_cast<std::size_t>(bodySize)) return Step::NeedMore;
        const std::string body = input_.substr(newline + 5, static_cast<std::size_t>(bodySize));
        input_.erase(0, newline + 5 + static_cast<std::size_t>(bodySize));

        std::vector<Message> messages;
        if (!multi) {
            messages.push_back(Message{topic, body});
        } else {
            if (body.size() < 4) return fatal("E_BAD_BODY MPUB failed to read message count");
            const std::int32_t count = readInt32(body, 0);
            if (count <= 0 || count > (maxBody - 4) / 5)
                return fatal("E_BAD_BODY MPUB invalid message count " + std::to_string(count));
            std::size_t at = 4;
            for (std::int32_t i = 0; i < count; ++i) {
                const std::string index = "(" + std::to_string(i) + ")";
                if (at + 4 > body.size())
                    return fatal("E_BAD_MESSAGE MPUB failed to read message" + index + " body size");
                const std::int32_t size = readInt32(body, at);
                at += 4;
                if (size <= 0)
                    return fatal("E_BAD_MESSAGE MPUB invalid message" + index + " body size " + std::to_string(size));
                if (size > maxMessage)
                    return fatal("E_BAD_MESSAGE MPUB message too big " + std::to_string(size) + " > " +
                                 std::to_string(maxMessage));
                if (at + static_cast<std::size_t>(size) > body.size())
                    return fatal("E_BAD_MESSAGE MPUB failed to read message body");
                messages.push_back(Message{topic, body.substr(at, static_cast<std::size_t>(size))});
                at += static_cast<std::size_t>(size);
            }
            // Stricter than nsqd, which would read the extra bytes as the next command.
            if (at != body.size())
                return fatal("E_BAD_BODY MPUB body has " + std::to_string(body.size() - at) +
                             " bytes after its messages");
        }

        std::string failure;
        bool heartbeatFirst = false;
        {
            std::lock_guard<std::mutex> lock(peer_.mutex_);
            // A message refused for good, as nsqd refuses an invalid one: the whole PUB / MPUB is
            // refused with E_BAD_MESSAGE and nothing of it recorded.
            if (!peer_.refusedMarker_.empty()) {
                for (std::size_t i = 0; i < messages.size(); ++i) {
                    if (messages[i].body.find(peer_.refusedMarker_) == std::string::npos) continue;
                    ++peer_.messagesRefused_;
                    failure = "E_BAD_MESSAGE " + name + " message(" + std::to_string(i) + ") is invalid";
                    break;
                }
            }
            if (failure.empty()) failure = std::exchange(peer_.failNextPublish_, std::string());
            if (failure.empty()) heartbeatFirst = std::exchange(peer_.heartbeatBeforeNextOk_, false);
        }
        if (!failure.empty()) return fatal(failure);
        pending_ = std::move(messages);
        pendingBodySize_ = static_cast<std::size_t>(bodySize);
        if (heartbeatFirst) {
            sendHeartbeat();
            awaitingNop_ = true;
            okDeadline_ = Clock::now() + kNopWait;
            return Step::Continue;
        }
        acknowledge();
        return Step::Continue;
    }

    // Records the pending publication, then answers OK: a client that has its OK finds it recorded.
    void acknowledge() {
        {
            std::lock_guard<std::mutex> lock(peer_.mutex_);
            for (Message& message : pending_)
                peer_.messages_.push_back(std::move(message));
            peer_.bodySizes_.push_back(pendingBodySize_);
        }
        pending_.clear();
        awaitingNop_ = false;
        sendFrame(kFrameResponse, "OK");
    }

    Step fatal(const std::string& text) {
        sendFrame(kFrameError, text);
        std::lock_guard<std::mutex> lock(peer_.mutex_);
        peer_.errorsSent_.push_back(text);
        return Step::Close;
    }

    void sendHeartbeat() {
        sendFrame(kFrameResponse, "_heartbeat_");
        std::lock_guard<std::mutex> lock(peer_.mutex_);
        ++peer_.heartbeatsSent_;
    }

    void sendFrame(std::int32_t type, std::string_view data) {
        std::string frame;
        appendUint32(frame, static_cast<std::uint32_t>(data.size() + 4));
        appendUint32(frame, static_cast<std::uint32_t>(type));
        frame.append(data);
        std::size_t sent = 0;
        while (sent < frame.size()) {
            const int n = socket_.sendBytes(frame.data() + sent, static_cast<int>(frame.size() - sent), MSG_NOSIGNAL);
            if (n <= 0) throw Poco::Net::ConnectionResetException("client closed while the peer was sending");
            sent += static_cast<std::size_t>(n);
        }
    }

    // nsqd closes right after a fatal error frame. Closing a socket with unread input makes the
    // kernel send a reset, which can destroy the error frame before the client reads it; so the
    // peer stops sending, reads what the client still sends for a moment, then closes.
    void lingeringClose() {
        socket_.shutdownSend();
        char buffer[64 * 1024];
        const Clock::time_point until = Clock::now() + kLinger;
        while (Clock::now() < until) {
            if (!socket_.poll(Poco::Timespan(std::chrono::microseconds(kPollStep).count()),
                              Poco::Net::Socket::SELECT_READ))
                continue;
            if (socket_.receiveBytes(buffer, sizeof buffer) <= 0) return;
        }
    }

    NsqPeer& peer_;
    Connection& connection_;
    Poco::Net::StreamSocket& socket_;
    std::string input_;
    bool magicChecked_ = false;
    bool identified_ = false;
    std::chrono::milliseconds heartbeatInterval_; // 0 = none
    Clock::time_point nextHeartbeat_;
    bool awaitingNop_ = false;
    Clock::time_point okDeadline_{};
    std::vector<Message> pending_;
    std::size_t pendingBodySize_ = 0;
};

NsqPeer::NsqPeer() : NsqPeer(Options{}) {}

NsqPeer::NsqPeer(Options options) : options_(options) {
    listener_ = std::make_unique<Poco::Net::ServerSocket>(Poco::Net::SocketAddress("127.0.0.1", 0), 64);
    port_ = listener_->address().port();
    acceptor_ = std::thread([this] { acceptLoop(); });
}

NsqPeer::~NsqPeer() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        shutdown_ = true;
    }
    changed_.notify_all();
    acceptor_.join();
}

std::string NsqPeer::address() const {
    return "127.0.0.1:" + std::to_string(port_);
}

void NsqPeer::acceptLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!shutdown_) {
        for (auto it = connections_.begin(); it != connections_.end();) {
            if (!(*it)->done) {
                ++it;
                continue;
            }
            (*it)->thread.join(); // it has finished: it set `done` as its last step
            it = connections_.erase(it);
        }
        if (!wantListening_ && listening_) {
            listener_.reset();
            for (auto& connection : connections_)
                connection->closeRequested = true;
            listening_ = false;
            changed_.notify_all();
        } else if (wantListening_ && !listening_) {
            try {
                listener_ = std::make_unique<Poco::Net::ServerSocket>(Poco::Net::SocketAddress("127.0.0.1", port_), 64);
            } catch (const Poco::Exception& e) {
                if (internalError_.empty())
                    internalError_ = "cannot listen again on " + address() + ": " + e.displayText();
            }
            listening_ = true; // even when the bind failed: the waiting test goes on and sees internalError()
            changed_.notify_all();
        }
        if (!listener_) {
            changed_.wait_for(lock, std::chrono::milliseconds(20));
            continue;
        }
        lock.unlock();
        const bool incoming = listener_->poll(Poco::Timespan(20'000), Poco::Net::Socket::SELECT_READ);
        std::unique_ptr<Connection> connection;
        if (incoming) {
            try {
                connection = std::make_unique<Connection>(listener_->acceptConnection());
            } catch (const Poco::IOException&) {
                // the client gave up between poll and accept
            }
        }
        lock.lock();
        if (!connection) continue;
        Connection& accepted = *connection;
        connections_.push_back(std::move(connection));
        ++connectionsAccepted_;
        accepted.thread = std::thread([this, &accepted] {
            Session(*this, accepted).run();
            std::lock_guard<std::mutex> done(mutex_);
            accepted.done = true;
            changed_.notify_all();
        });
    }
    listener_.reset();
    for (auto& connection : connections_)
        connection->closeRequested = true;
    lock.unlock();
    for (auto& connection : connections_)
        connection->thread.join(); // only this thread changes the list
}

void NsqPeer::waitUntil(std::unique_lock<std::mutex>& lock, const std::function<bool()>& condition) {
    if (!changed_.wait_for(lock, kScriptTimeout, condition))
        throw std::runtime_error("NsqPeer: a scripted change did not complete within 10 s");
}

void NsqPeer::closeConnections() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (auto& connection : connections_)
        connection->closeRequested = true;
    waitUntil(lock, [this] {
        return std::none_of(connections_.begin(), connections_.end(),
                            [](const auto& c) { return c->closeRequested && !c->done; });
    });
}

void NsqPeer::stopListening() {
    std::unique_lock<std::mutex> lock(mutex_);
    wantListening_ = false;
    changed_.notify_all();
    waitUntil(lock, [this] {
        return !listening_ && std::none_of(connections_.begin(), connections_.end(),
                                           [](const auto& c) { return c->closeRequested && !c->done; });
    });
}

void NsqPeer::startListening() {
    std::unique_lock<std::mutex> lock(mutex_);
    wantListening_ = true;
    changed_.notify_all();
    waitUntil(lock, [this] { return listening_; });
}

void NsqPeer::heartbeatBeforeNextOk() {
    std::lock_guard<std::mutex> lock(mutex_);
    heartbeatBeforeNextOk_ = true;
}

void NsqPeer::refuseMessagesContaining(std::string marker) {
    std::lock_guard<std::mutex> lock(mutex_);
    refusedMarker_ = std::move(marker);
}

std::size_t NsqPeer::refusals() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messagesRefused_;
}

void NsqPeer::failNextPublish(std::string errorFrame) {
    std::lock_guard<std::mutex> lock(mutex_);
    failNextPublish_ = std::move(errorFrame);
}

std::vector<NsqPeer::Message> NsqPeer::messages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
}

std::size_t NsqPeer::messageCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return messages_.size();
}

std::vector<std::size_t> NsqPeer::bodySizes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bodySizes_;
}

std::size_t NsqPeer::nopCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return nops_;
}

std::size_t NsqPeer::heartbeatsSent() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return heartbeatsSent_;
}

std::size_t NsqPeer::connectionsAccepted() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return connectionsAccepted_;
}

std::vector<std::string> NsqPeer::identifyBodies() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return identifyBodies_;
}

std::vector<std::string> NsqPeer::errorsSent() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errorsSent_;
}

std::string NsqPeer::internalError() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return internalError_;
}

} // namespace agent::test
