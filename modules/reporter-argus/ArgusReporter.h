// The reporter's work (docs/ARCHITECTURE.md §13): register the node with the Argus master, then
// report its health every interval; register again when the master forgot the node (404 on a
// report) or the host's address changed; back off with jitter while the master is down. Runs on a
// thread of its own, so a slow or absent master never holds up the rest of the agent, and stops
// promptly: a stop during a wait ends the wait; a request in flight is bounded by the request
// timeout.
//
// Touches the master (HTTP), `<root>/<hostname>/node.json` (written after each registration) and
// `<root>/<hostname>/health/` (read at each report). Logs one key=value line per event.
#pragma once

#include "ArgusNode.h"
#include "ArgusSettings.h"
#include "HealthDirectory.h"
#include "MasterClient.h"

#include <agent/Backoff.h>

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/Timespan.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace agent::argus {

struct ReporterOptions {
    std::string masterUrl; // as normalizeMasterEndpoint() gives it
    std::chrono::seconds reportInterval{kDefaultReportIntervalSeconds};
    std::string hostname;
    NodeIdentity identity;
    std::string identitySource; // where the identity came from, for the health and the log
    std::string root;           // node.json and health/ live in <root>/<hostname>/
    std::string savedNodeId;    // from node.json; "" = a new node
    std::string version;        // the agent's version, sent at registration
    std::chrono::milliseconds retryInitial{1000};
    std::chrono::milliseconds retryMax{60000};
    Poco::Timespan requestTimeout{3, 0};
    HealthLimits healthLimits;
};

// What the reporter needs from its surroundings, replaceable in tests.
struct ReporterHooks {
    std::function<std::string()> currentIp;                     // asked before every step
    std::function<Poco::JSON::Object::Ptr()> agentHealth;       // the report's "agent" entry
    std::function<void(Poco::JSON::Object::Ptr)> publishHealth; // the reporter's own health
};

// The key the agent's own module health has in the report's health object.
inline constexpr const char* kAgentHealthKey = "agent";

class ArgusReporter {
public:
    ArgusReporter(ReporterOptions options, ReporterHooks hooks, Poco::Logger& logger);
    ~ArgusReporter();
    ArgusReporter(const ArgusReporter&) = delete;
    ArgusReporter& operator=(const ArgusReporter&) = delete;

    // Starts the thread: the first registration right away, then a report every interval.
    void start();
    // Ends a wait at once, lets a request in flight finish (bounded by the request timeout), joins.
    void stop();

    // One step of the thread's loop, for tests that drive the reporter without its thread:
    // register if needed, then report. Returns how long to wait before the next step.
    std::chrono::milliseconds step();

    // Read these from the thread that runs step() (or after stop()).
    const std::string& nodeId() const { return nodeId_; }
    bool registered() const { return registered_; }
    std::string nodeFilePath() const;
    std::string healthDirectory() const;

private:
    enum class ReportResult { Reported, NodeUnknown, Failed };

    void run();
    // Waits `delay` unless stopped first; false once stopping.
    bool waitFor(std::chrono::milliseconds delay);
    bool registerNode(const std::string& ip);
    ReportResult report();
    HealthEntries collectHealth();
    std::chrono::milliseconds retryAfter(const std::string& action);
    void publishHealth();

    const ReporterOptions options_;
    const ReporterHooks hooks_;
    Poco::Logger& logger_;
    MasterClient master_;
    agent::Backoff retry_; // initial * 2^attempt up to the maximum, with jitter

    // State of the loop: only the reporter's thread (or a test calling step()) touches it.
    std::string nodeId_;
    bool registered_ = false;
    std::string registeredIp_;
    std::uint64_t registrations_ = 0;
    std::uint64_t reports_ = 0;
    std::uint64_t failures_ = 0;
    std::string lastError_;
    std::string lastReport_;                   // ISO 8601 time of the last report the master took
    std::set<std::string> lastHealthWarnings_; // a warning is logged when it appears, not at every report

    std::mutex stopMutex_; // guards stopping_
    std::condition_variable stopSignal_;
    bool stopping_ = false;
    std::thread thread_;
};

using ArgusReporterPtr = std::unique_ptr<ArgusReporter>;

} // namespace agent::argus
