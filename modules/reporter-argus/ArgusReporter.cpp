#include "ArgusReporter.h"

#include "EventLine.h"
#include "HostFacts.h"
#include "NodeFile.h"

#include <Poco/Types.h>

#include <algorithm>
#include <exception>

namespace agent::argus {
namespace {

using Milliseconds = std::chrono::milliseconds;

std::uint64_t count(Milliseconds delay) { return static_cast<std::uint64_t>(delay.count()); }

// The section's retry_initial and retry_max, doubling between them.
agent::Backoff::Policy backoffPolicy(const ReporterOptions& options) {
    using Seconds = std::chrono::duration<double>;
    const double initial = Seconds(options.retryInitial).count();
    return {initial, std::max(initial, Seconds(options.retryMax).count()), 2};
}

} // namespace

ArgusReporter::ArgusReporter(ReporterOptions options, ReporterHooks hooks, Poco::Logger& logger)
    : options_(std::move(options)), hooks_(std::move(hooks)), logger_(logger),
      master_(options_.masterUrl, options_.requestTimeout), retry_(backoffPolicy(options_)),
      nodeId_(options_.savedNodeId) {}

ArgusReporter::~ArgusReporter() { stop(); }

std::string ArgusReporter::nodeFilePath() const { return options_.root + "/" + options_.hostname + "/node.json"; }

std::string ArgusReporter::healthDirectory() const { return options_.root + "/" + options_.hostname + "/health"; }

void ArgusReporter::start() {
    {
        std::lock_guard<std::mutex> lock(stopMutex_);
        stopping_ = false;
    }
    publishHealth();
    thread_ = std::thread([this] { run(); });
}

void ArgusReporter::stop() {
    {
        std::lock_guard<std::mutex> lock(stopMutex_);
        stopping_ = true;
    }
    stopSignal_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool ArgusReporter::waitFor(Milliseconds delay) {
    std::unique_lock<std::mutex> lock(stopMutex_);
    stopSignal_.wait_for(lock, delay, [this] { return stopping_; });
    return !stopping_;
}

void ArgusReporter::run() {
    Milliseconds delay{0};
    while (waitFor(delay)) {
        try {
            delay = step();
        } catch (const std::exception& e) {
            // Not an answer of the master (those are handled in step()): log it, count it, back off.
            lastError_ = e.what();
            delay = retryAfter("step");
        }
        publishHealth();
    }
}

Milliseconds ArgusReporter::step() {
    const std::string ip = hooks_.currentIp();
    if (registered_ && ip != registeredIp_) {
        logger_.information(EventLine("re-register")
                                .add("reason", "ip_changed")
                                .add("node_id", nodeId_)
                                .add("old_ip", registeredIp_)
                                .add("new_ip", ip)
                                .text());
        registered_ = false;
    }
    bool justRegistered = false;
    if (!registered_) {
        if (!registerNode(ip)) return retryAfter("register");
        justRegistered = true;
    }
    switch (report()) {
    case ReportResult::Reported:
        retry_.reset();
        return options_.reportInterval;
    case ReportResult::NodeUnknown:
        logger_.information(EventLine("re-register").add("reason", "not_found").add("node_id", nodeId_).text());
        registered_ = false;
        // A master that forgets the node it has just taken is not answered by a tight loop.
        return justRegistered ? retryAfter("report") : Milliseconds(0);
    case ReportResult::Failed: break;
    }
    return retryAfter("report");
}

bool ArgusReporter::registerNode(const std::string& ip) {
    const Registration registration{nodeId_,          options_.hostname, ip,         options_.identity,
                                    options_.version, cpuCount(),        memoryBytes()};
    const MasterReply reply = master_.registerNode(registrationBody(registration));
    if (reply.outcome != MasterOutcome::Ok) {
        lastError_ = "register: " + reply.error;
        return false;
    }
    MasterNode node;
    try {
        node = parseMasterNode(reply.body);
    } catch (const ArgusProtocolError& e) {
        lastError_ = "register: HTTP " + std::to_string(reply.status) + " with an unusable node: " + e.what();
        return false;
    }
    if (!nodeId_.empty() && node.id != nodeId_)
        logger_.warning(EventLine("node_id_changed").add("old_node_id", nodeId_).add("node_id", node.id).text());
    nodeId_ = node.id;
    registered_ = true;
    registeredIp_ = ip;
    ++registrations_;
    logger_.information(EventLine("register")
                            .add("result", "ok")
                            .add("status", static_cast<std::uint64_t>(reply.status))
                            .add("node_id", nodeId_)
                            .add("hostname", options_.hostname)
                            .add("ip", ip)
                            .add("env", options_.identity.env)
                            .add("user", options_.identity.user)
                            .add("instance", options_.identity.instance)
                            .text());
    try {
        saveNodeFile(nodeFilePath(), node);
    } catch (const NodeFileError& e) {
        // The registration stands; the next one writes the file again.
        lastError_ = e.what();
        logger_.error(EventLine("node_file").add("result", "failed").add("error", e.what()).text());
    }
    return true;
}

HealthEntries ArgusReporter::collectHealth() {
    HealthScan scan = scanHealthDirectory(healthDirectory(), options_.healthLimits);
    std::set<std::string> warnings(scan.warnings.begin(), scan.warnings.end());
    for (const std::string& warning : warnings) {
        if (lastHealthWarnings_.count(warning) == 0)
            logger_.warning(EventLine("health_file_skipped").add("reason", warning).text());
    }
    lastHealthWarnings_ = std::move(warnings);
    if (hooks_.agentHealth) scan.entries.emplace_back(kAgentHealthKey, hooks_.agentHealth());
    return std::move(scan.entries);
}

ArgusReporter::ReportResult ArgusReporter::report() {
    const HealthEntries health = collectHealth();
    const auto now = std::chrono::system_clock::now();
    const MasterReply reply = master_.reportStatus(nodeId_, reportBody(now, health));
    if (reply.outcome == MasterOutcome::NotFound) return ReportResult::NodeUnknown;
    if (reply.outcome != MasterOutcome::Ok) {
        lastError_ = "report: " + reply.error;
        return ReportResult::Failed;
    }
    ++reports_;
    lastReport_ = isoTimestamp(now);
    logger_.information(EventLine("report")
                            .add("result", "ok")
                            .add("status", static_cast<std::uint64_t>(reply.status))
                            .add("node_id", nodeId_)
                            .add("health_entries", static_cast<std::uint64_t>(health.size()))
                            .text());
    return ReportResult::Reported;
}

Milliseconds ArgusReporter::retryAfter(const std::string& action) {
    // At least a millisecond: a zero wait would spin on a master that refuses at once.
    const Milliseconds delay(std::max<Poco::Timespan::TimeDiff>(1, retry_.next().totalMilliseconds()));
    ++failures_;
    logger_.warning(EventLine("retry")
                        .add("action", action)
                        .add("attempt", static_cast<std::uint64_t>(retry_.attempts()))
                        .add("delay_ms", count(delay))
                        .add("master", options_.masterUrl)
                        .add("error", lastError_)
                        .text());
    return delay;
}

void ArgusReporter::publishHealth() {
    if (!hooks_.publishHealth) return;
    Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
    health->set("master", options_.masterUrl);
    health->set("node_id", nodeId_);
    health->set("registered", registered_);
    health->set("ip", registeredIp_);
    health->set("env", options_.identity.env);
    health->set("user", options_.identity.user);
    health->set("instance", options_.identity.instance);
    health->set("identity_source", options_.identitySource);
    health->set("registrations", static_cast<Poco::UInt64>(registrations_));
    health->set("reports", static_cast<Poco::UInt64>(reports_));
    health->set("failures", static_cast<Poco::UInt64>(failures_));
    health->set("last_report", lastReport_);
    health->set("last_error", lastError_);
    hooks_.publishHealth(health);
}

} // namespace agent::argus
