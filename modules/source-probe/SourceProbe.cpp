// source-probe: the Go agent's other registry types. Every namespace's "collect" entries with
// measurement_type PORT (a TCP connect check: PORT.<name>.<port> = 1 when it connects, else 0)
// or PROC (processes running bin_path: PROC.<name>.count, .cpu.percent, .mem.rss, .threads),
// each checked on its own interval, published into the entry's namespace.
#include "ProbeChecks.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Module.h>

#include <Poco/ClassLibrary.h>
#include <Poco/NumberFormatter.h>
#include <Poco/NumberParser.h>

#include <chrono>
#include <ctime>
#include <map>
#include <vector>
#include <unistd.h>

namespace {

const agent::ConfigSchema kSchema = {
    {"interval", agent::ConfigType::Integer, "10", "seconds between rounds; an entry's own interval, if longer, is kept"},
    {"connect_timeout", agent::ConfigType::Float, "3", "PORT: seconds a connect may take, unless the entry says"},
    {"proc_root", agent::ConfigType::String, "/proc", "PROC: where processes are read"},
};

using Clock = std::chrono::steady_clock;

struct ProcBaseline {
    std::uint64_t cpuTicks = 0;
    Clock::time_point at;
};

std::string field(const agent::Registry::Entry& entry, const char* key, const std::string& fallback = "") {
    auto it = entry.find(key);
    return it == entry.end() || it->second.empty() ? fallback : it->second;
}

class SourceProbe : public agent::Source {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }
    // Two threads: a round that waits on connect timeouts must not hold up the module's other work
    // (a round's PORT checks run at once, so it waits about one timeout at most).
    agent::ModuleDescription describe() const override {
        return {static_cast<agent::Roles>(agent::Role::Source), {}, 2};
    }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        interval_ = config.getInt("interval");
        connectTimeout_ = config.getDouble("connect_timeout");
        procRoot_ = config.getPath("proc_root");
        if (interval_ < 1 || interval_ > 86400) errors.add(config, "interval", "must be between 1 and 86400 seconds");
        if (connectTimeout_ <= 0 || connectTimeout_ > 60) errors.add(config, "connect_timeout", "must be between 0 and 60 seconds");
        errors.throwIfAny();
    }

    void start(agent::Context& context) override { context_ = &context; }
    Poco::Timespan collectInterval() const override { return Poco::Timespan(interval_, 0); }

    void collect(agent::Batch& out) override {
        if (context_ == nullptr) return;
        const auto now = Clock::now();
        const std::int64_t wall = static_cast<std::int64_t>(std::time(nullptr));
        std::vector<PortCheck> ports; // connected all at once after the walk
        for (const std::string& ns : context_->identity().namespaces) {
            for (const agent::Registry::Entry& entry : context_->registry().entries(ns)) {
                const std::string type = field(entry, "measurement_type");
                if (type != "PORT" && type != "PROC") continue;
                const std::string name = field(entry, "name");
                const std::string key = ns + "/" + type + "/" + name;
                if (!agent::isValidName(name, 200)) {
                    refuse(key, type + " entry in " + ns + " has an invalid name \"" + name + "\"");
                    continue;
                }
                Poco::Int64 every = interval_;
                Poco::NumberParser::tryParse64(field(entry, "interval", "0"), every);
                auto last = lastRun_.find(key);
                if (last != lastRun_.end() && now - last->second < std::chrono::seconds(std::max<Poco::Int64>(every, 1)) -
                                                                       std::chrono::milliseconds(500))
                    continue; // its own interval is longer than the round
                lastRun_[key] = now;
                if (type == "PORT") preparePort(ns, name, entry, key, ports);
                else checkProc(ns, name, entry, key, wall, now, out);
            }
        }
        checkPorts(ports, wall, out);
    }

private:
    // A PORT entry of this round, ready to connect.
    struct PortCheck {
        std::string ns;
        std::string name;
        agent::probe::PortTarget target;
    };

    void preparePort(const std::string& ns, const std::string& name, const agent::Registry::Entry& entry,
                     const std::string& key, std::vector<PortCheck>& ports) {
        int port = 0;
        if (!Poco::NumberParser::tryParse(field(entry, "port"), port) || port < 1 || port > 65535) {
            refuse(key, "PORT entry " + name + " in " + ns + ": port \"" + field(entry, "port") + "\" is not 1 to 65535");
            return;
        }
        double timeout = connectTimeout_;
        const std::string own = field(entry, "connect_timeout");
        if (!own.empty() && !(Poco::NumberParser::tryParseFloat(own, timeout) && timeout > 0 && timeout <= 60)) {
            timeout = connectTimeout_;
            warnOnce(key + "/connect_timeout", "PORT entry " + name + " in " + ns + ": connect_timeout \"" + own +
                                                   "\" is not 0 to 60 seconds; the module's " +
                                                   Poco::NumberFormatter::format(connectTimeout_) + " s is used");
        }
        ports.push_back(PortCheck{ns, name,
                                  {field(entry, "host", "127.0.0.1"), port,
                                   std::chrono::milliseconds(static_cast<long>(timeout * 1000))}});
    }

    // Every PORT check of the round at once: unreachable ports cost one timeout, not one each.
    void checkPorts(const std::vector<PortCheck>& ports, std::int64_t wall, agent::Batch& out) {
        if (ports.empty()) return;
        std::vector<agent::probe::PortTarget> targets;
        targets.reserve(ports.size());
        for (const PortCheck& check : ports) targets.push_back(check.target);
        const std::vector<agent::probe::PortResult> results = agent::probe::tcpConnectAll(targets);
        for (std::size_t i = 0; i < ports.size(); ++i) {
            const PortCheck& check = ports[i];
            out.push_back(agent::makePoint(check.ns, "PORT." + check.name + "." + std::to_string(check.target.port),
                                           std::int64_t{results[i].up ? 1 : 0}, wall));
            if (!results[i].up) context_->logger().debug("PORT %s: %s", check.name, results[i].error);
        }
    }

    void checkProc(const std::string& ns, const std::string& name, const agent::Registry::Entry& entry,
                   const std::string& key, std::int64_t wall, Clock::time_point now, agent::Batch& out) {
        const std::string binPath = field(entry, "bin_path");
        if (binPath.empty() || binPath.front() != '/') {
            refuse(key, "PROC entry " + name + " in " + ns + ": bin_path \"" + binPath + "\" is not an absolute path");
            return;
        }
        const agent::probe::ProcessUsage usage = agent::probe::scanProcesses(procRoot_, binPath);
        const std::string prefix = "PROC." + name + ".";
        out.push_back(agent::makePoint(ns, prefix + "count", static_cast<std::int64_t>(usage.count), wall));
        out.push_back(agent::makePoint(ns, prefix + "mem.rss", static_cast<std::int64_t>(usage.rssBytes), wall));
        out.push_back(agent::makePoint(ns, prefix + "threads", static_cast<std::int64_t>(usage.threads), wall));
        auto baseline = baselines_.find(key);
        if (baseline != baselines_.end() && usage.cpuTicks >= baseline->second.cpuTicks) {
            // A process that exited takes its ticks along: a sum that shrank gives no rate this round.
            const double seconds = std::chrono::duration<double>(now - baseline->second.at).count();
            if (seconds > 0) {
                const double percent = 100.0 * static_cast<double>(usage.cpuTicks - baseline->second.cpuTicks) /
                                       static_cast<double>(sysconf(_SC_CLK_TCK)) / seconds;
                out.push_back(agent::makePoint(ns, prefix + "cpu.percent", percent, wall));
            }
        }
        baselines_[key] = ProcBaseline{usage.cpuTicks, now};
    }

    void refuse(const std::string& key, const std::string& message) { warnOnce(key, message + "; skipped"); }

    // Logs a problem of a registry entry the first time it is seen, not every round.
    void warnOnce(const std::string& key, const std::string& message) {
        if (warned_.emplace(key, message).second) context_->logger().warning("%s", message);
    }

    std::int64_t interval_ = 10;
    double connectTimeout_ = 3;
    std::string procRoot_;
    agent::Context* context_ = nullptr;
    // Only the scheduler's one task for this module touches these (runs never overlap).
    std::map<std::string, Clock::time_point> lastRun_;
    std::map<std::string, ProcBaseline> baselines_;
    std::map<std::string, std::string> warned_;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SourceProbe, "source-probe")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
