// An nsqd stand-in for tests: the server side of NSQ's TCP protocol V2 on 127.0.0.1, on a port
// the OS chooses. It checks the magic, answers IDENTIFY (the feature-negotiation JSON, or OK),
// validates PUB and MPUB as nsqd does (topic name, body and message sizes against its own limits;
// E_BAD_TOPIC / E_BAD_BODY / E_BAD_MESSAGE, after which it closes the connection like nsqd does
// after every fatal error), answers OK, sends heartbeats and counts the NOPs that answer them, and
// records every message it acknowledged. Tests script it: a heartbeat between the next MPUB and
// its OK, an error for the next publish, closing every connection, stopping and restarting the
// listener on the same port. One thread accepts, one thread serves each connection; all are
// joined by the destructor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace Poco::Net {
class ServerSocket;
}

namespace agent::test {

class NsqPeer {
public:
    struct Options {
        std::size_t maxMessageBytes = 1'048'576; // nsqd --max-msg-size
        std::size_t maxBodyBytes = 5'242'880;    // nsqd --max-body-size
        // 0: the interval the client asked for in IDENTIFY (30 s before IDENTIFY), as nsqd does.
        std::chrono::milliseconds heartbeatInterval{0};
        // Above 0: the IDENTIFY response also carries "max_msg_size" (nsqd itself does not send it).
        std::size_t advertisedMaxMessageBytes = 0;
    };

    struct Message {
        std::string topic;
        std::string body;
    };

    NsqPeer();
    explicit NsqPeer(Options options);
    ~NsqPeer();
    NsqPeer(const NsqPeer&) = delete;
    NsqPeer& operator=(const NsqPeer&) = delete;

    std::uint16_t port() const { return port_; }
    std::string address() const; // "127.0.0.1:<port>"

    // Every message acknowledged with OK, in the order acknowledged.
    std::vector<Message> messages() const;
    std::size_t messageCount() const;
    // The body size of every acknowledged MPUB (of a PUB: its message size).
    std::vector<std::size_t> bodySizes() const;
    std::size_t nopCount() const;
    std::size_t heartbeatsSent() const;
    std::size_t connectionsAccepted() const;
    std::vector<std::string> identifyBodies() const; // the JSON of every IDENTIFY
    std::vector<std::string> errorsSent() const;     // the text of every error frame
    // What went wrong inside the peer itself (not a client's fault); "" when nothing did.
    std::string internalError() const;

    // The next PUB or MPUB gets a _heartbeat_ first, and its OK only after the client's NOP
    // (or after 5 s without one).
    void heartbeatBeforeNextOk();
    // The next PUB or MPUB is answered with this error frame ("E_MPUB_FAILED MPUB failed ...")
    // and its connection closed; nothing of it is recorded.
    void failNextPublish(std::string errorFrame);
    // From now on, a PUB or MPUB holding a message whose body contains `marker` is refused for
    // good the way nsqd refuses an invalid message: an "E_BAD_MESSAGE ..." error frame, the
    // connection closed, nothing of it recorded (the other messages of an MPUB neither). An empty
    // marker turns this off.
    void refuseMessagesContaining(std::string marker);
    // PUBs and MPUBs refused so far because of that marker.
    std::size_t refusals() const;
    // Closes every client connection; returns once they are closed.
    void closeConnections();
    // Closes the listener and every connection (connects are refused); returns once done.
    void stopListening();
    // Listens again on the same port.
    void startListening();

private:
    struct Connection;
    class Session; // one client's protocol state, on its connection's thread
    using Clock = std::chrono::steady_clock;

    void acceptLoop();
    void waitUntil(std::unique_lock<std::mutex>& lock, const std::function<bool()>& condition);

    const Options options_;
    std::uint16_t port_ = 0;
    std::unique_ptr<Poco::Net::ServerSocket> listener_; // used by the accepting thread only, once it runs

    mutable std::mutex mutex_; // guards everything below
    std::condition_variable changed_;
    bool shutdown_ = false;
    bool wantListening_ = true;
    bool listening_ = true;
    std::list<std::unique_ptr<Connection>> connections_;
    std::size_t connectionsAccepted_ = 0;
    std::vector<Message> messages_;
    std::vector<std::size_t> bodySizes_;
    std::vector<std::string> identifyBodies_;
    std::vector<std::string> errorsSent_;
    std::size_t nops_ = 0;
    std::size_t heartbeatsSent_ = 0;
    std::string internalError_;
    bool heartbeatBeforeNextOk_ = false;
    std::string failNextPublish_;
    std::string refusedMarker_;
    std::size_t messagesRefused_ = 0;

    std::thread acceptor_; // last: starts after everything above exists
};

} // namespace agent::test
