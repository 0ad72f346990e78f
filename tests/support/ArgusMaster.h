// An Argus master for tests: an HTTP server that answers the docs/ARCHITECTURE.md §13 contract
// (register with POST /api/v1/master/nodes, report with PUT /api/v1/master/nodes/{id}/status, list
// with GET), keeps its nodes in memory, and can be told to forget a node, to answer badly, or to go
// down (stop listening, so connections are refused) and come back on the same port.
//
// In-process for most tests; tests/fixtures/argus-master runs it as a process of its own (for a
// test that puts it in a network namespace), writing its state to a file after every request.
#pragma once

#include <Poco/JSON/Object.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace Poco::Net {
class HTTPServer;
}

namespace agent::test {

class ArgusMaster {
public:
    enum class Mode {
        Normal,
        Http500, // HTTP 500 with a short body, to every request
        Garbage, // HTTP 200 with a body that is not JSON, to every request
        NoId,    // registrations answered 201 with a node object that has no id
    };

    // What the master holds about one node.
    struct Node {
        std::string id;
        std::string name;
        std::string ip; // meta_data.ip
        std::string env;
        std::string user;
        std::string instance;
        std::string lastReport;         // the last report's timestamp
        Poco::JSON::Object::Ptr health; // the last report's health (null before the first)
        int registrations = 0;
        int reports = 0;
    };

    // Listens on host:port (0 = any free port).
    explicit ArgusMaster(const std::string& host = "127.0.0.1", unsigned short port = 0);
    ~ArgusMaster();
    ArgusMaster(const ArgusMaster&) = delete;
    ArgusMaster& operator=(const ArgusMaster&) = delete;

    std::string endpoint() const; // host:port, as MASTER_ENDPOINT takes it
    std::string url() const;      // http://host:port
    unsigned short port() const { return port_; }

    void setMode(Mode mode);
    // Drops the node, as a master that lost its database would: the next report gets a 404.
    void forget(const std::string& id);
    void goDown();
    void comeUp();
    // After every request, the state (stateJson()) is written to this file (temp file + rename).
    void setStateFile(const std::string& path);

    std::vector<Node> nodes() const;
    std::optional<Node> node(const std::string& id) const;
    std::vector<std::string> registrationBodies() const;
    int reportCount() const;
    // {"nodes": [node objects as the master keeps them], "registrations": [bodies], "reports": N}
    std::string stateJson() const;
    // Reads what stateJson() wrote: the nodes.
    static std::vector<Node> nodesFromState(const std::string& json);

    // Used by the request handler.
    struct Reply {
        int status = 200;
        std::string body;
    };
    Reply answer(const std::string& method, const std::string& uri, const std::string& body);

private:
    void listen();
    Reply registerNode(const std::string& body);
    Reply reportStatus(const std::string& id, const std::string& body);
    std::string stateJsonLocked() const;
    void writeStateLocked() const;

    const std::string host_;
    unsigned short port_;
    mutable std::mutex mutex_; // guards everything below
    Mode mode_ = Mode::Normal;
    std::map<std::string, Poco::JSON::Object::Ptr> nodes_; // by id
    std::map<std::string, int> registrationsById_;
    std::map<std::string, int> reportsById_;
    std::vector<std::string> registrationBodies_;
    int reports_ = 0;
    int nextId_ = 1;
    std::string stateFile_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
};

} // namespace agent::test
