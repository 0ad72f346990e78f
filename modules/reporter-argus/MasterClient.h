// HTTP to the Argus master (docs/ARCHITECTURE.md §13): POST /api/v1/master/nodes registers, PUT
// /api/v1/master/nodes/{id}/status reports. One short-lived connection per request (one request a
// minute needs no keep-alive, and a restarted master is then never a stale connection). Touches
// only the network; never sleeps, never retries: the reporter owns the backoff.
#pragma once

#include <Poco/Timespan.h>

#include <memory>
#include <string>

namespace agent::argus {

enum class MasterOutcome {
    Ok,       // 2xx
    NotFound, // 404: the master does not know the node (id) any more
    Failed,   // no answer, timeout, or any other status
};

struct MasterReply {
    MasterOutcome outcome = MasterOutcome::Failed;
    int status = 0;    // HTTP status; 0 = no answer
    std::string body;  // capped
    std::string error; // why it failed: "connection refused", "HTTP 500: ..."
};

class MasterClient {
public:
    // `baseUrl` as normalizeMasterEndpoint() gives it; `timeout` applies to connect, send and
    // receive, each, and bounds how long stopping the reporter can wait for a request.
    MasterClient(std::string baseUrl, Poco::Timespan timeout);

    MasterReply registerNode(const std::string& body);
    MasterReply reportStatus(const std::string& nodeId, const std::string& body);

    const std::string& baseUrl() const { return baseUrl_; }

private:
    MasterReply send(const std::string& method, const std::string& path, const std::string& body);

    std::string baseUrl_;
    std::string host_;
    unsigned short port_ = 0;
    std::string pathPrefix_;
    Poco::Timespan timeout_;
};

using MasterClientPtr = std::unique_ptr<MasterClient>;

} // namespace agent::argus
