// A registry ("tree") for tests: an HTTP server on a loopback port that answers exactly as
// docs/ARCHITECTURE.md §9 says, from namespaces and entries the test sets, and can be told to fail.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace Poco::Net {
class HTTPServer;
}

namespace agent::test {

class RegistryFixture {
public:
    enum class Mode {
        Normal,
        Http500,        // HTTP 500 with an empty body
        Garbage,        // HTTP 200 with a body that is not JSON
        EnvelopeError,  // HTTP 200, {"httpstatus": 500, "data": null, "msg": "..."}
        Silent,         // accepts and answers nothing for 3 s
    };
    using Entry = std::map<std::string, std::string>;

    // A PLUGIN entry as the registry lists it: "PLUGIN.<name>", its git address, its period in
    // seconds (a string, as the registry sends it).
    static Entry pluginEntry(const std::string& name, const std::string& git, const std::string& interval) {
        return {{"measurement_type", "PLUGIN"}, {"name", "PLUGIN." + name}, {"git", git}, {"interval", interval}};
    }

    RegistryFixture();
    ~RegistryFixture();
    RegistryFixture(const RegistryFixture&) = delete;
    RegistryFixture& operator=(const RegistryFixture&) = delete;

    std::string url() const; // http://127.0.0.1:<port>

    void setNamespace(const std::string& ns, const std::string& id, std::vector<Entry> entries);
    void removeNamespace(const std::string& ns);
    void setMode(Mode mode);

    // What the agent sent: request bodies of /api/v1/agent/ns and /api/v1/agent/report.
    std::vector<std::string> nsRequests() const;
    std::vector<std::string> reports() const;
    int requestCount() const;
    // When each request arrived (seconds since the epoch, to the microsecond), in order.
    std::vector<double> requestTimes() const;

    // Used by the request handler.
    struct Reply {
        int status = 200;
        std::string body;
        bool silent = false;
    };
    Reply answer(const std::string& method, const std::string& uri, const std::string& body);

private:
    mutable std::mutex mutex_; // guards the fields below
    std::map<std::string, std::string> namespaces_;
    std::map<std::string, std::vector<Entry>> entries_;
    Mode mode_ = Mode::Normal;
    std::vector<std::string> nsRequests_;
    std::vector<std::string> reports_;
    int requests_ = 0;
    std::vector<double> requestTimes_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
};

} // namespace agent::test
