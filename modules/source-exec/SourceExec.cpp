// source-exec: the plugin manager. Follows the registry's PLUGIN entries of every namespace of
// the host, keeps each plugin's git checkout under <pluginsdir>/<ns>/<project>, runs each one on
// its period (as pluginsuser, no shell, bounded in time and output) and publishes its metrics as
// PLUGIN.<project>.<name> plus the run's result PLUGIN.<project> into the plugin's namespace.
#include "CloneQueue.h"
#include "DisabledPlugins.h"
#include "GitRepository.h"
#include "PluginOutput.h"
#include "PluginRunner.h"
#include "PluginSupervisor.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Module.h>
#include <agent/Routes.h>

#include <Poco/ClassLibrary.h>
#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/NumberParser.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <dlfcn.h>
#include <filesystem>
#include <future>
#include <unistd.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

namespace {

using agent::exec::RunStatus;
using SteadyClock = std::chrono::steady_clock;

// How many recent start delays the health's start_delay_ms is computed over.
constexpr std::size_t kDelaySamples = 4096;
// A plugin whose runs are skipped is logged at most this often.
constexpr auto kSkipLogInterval = std::chrono::minutes(1);
// stop() gives running plugins at most this much of their kill_grace.
constexpr auto kMaxStopGrace = std::chrono::milliseconds(2000);

const agent::ConfigSchema kSchema = {
    {"interval", agent::ConfigType::Integer, "10", "seconds between checks of the registry's plugin list"},
    {"pluginsdir", agent::ConfigType::String, "/usr/local/agent-plugins", "where plugins are cloned", "agent.pluginsdir"},
    {"pluginsuser", agent::ConfigType::String, "nobody", "user plugins run as; never root", "agent.pluginsuser"},
    {"git", agent::ConfigType::String, "", "clone URL template, %s = group/project; \"\" = the registry's address", "agent.git"},
    {"branch", agent::ConfigType::String, "release", "branch checked out"},
    {"clone_timeout", agent::ConfigType::Integer, "120", "seconds a clone or fetch may take"},
    {"max_parallel_clones", agent::ConfigType::Integer, "2", "clones and fetches at a time"},
    {"clone_splay", agent::ConfigType::Float, "10", "random delay before each clone, seconds (spreads a fleet)"},
    {"stdout_cap", agent::ConfigType::Integer, "4194304", "bytes of plugin output read; more fails the run as bad_output"},
    {"kill_grace", agent::ConfigType::Float, "2", "seconds between SIGTERM and SIGKILL of a timed-out plugin"},
    {"disable_ttl", agent::ConfigType::Integer, "86400", "seconds after which a disabled plugin is enabled again"},
};

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The git helper is installed next to this module's file (modules/source-exec/CMakeLists.txt);
// the module may have been loaded through a symlink, so its real location counts.
std::string gitHelperPath() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&gitHelperPath), &info) == 0 || info.dli_fname == nullptr) return {};
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::canonical(info.dli_fname, ec);
    return ec ? std::string() : (self.parent_path() / "source-exec-git").string();
}

struct Plugin {
    std::string ns;
    std::string project;
    std::string git;        // as the registry lists it
    std::string parameters;
    std::int64_t period = 0; // seconds; 0 = on demand only
    agent::TaskId task = 0;
    bool checkedOut = false;
    bool running = false;
    SteadyClock::time_point nextDue{};      // the scheduled run's expected due time
    std::uint64_t skipped = 0;              // periods skipped because the previous run was going
    SteadyClock::time_point lastSkipLog{};  // at most one log line a minute
    std::int64_t lastStart = 0;
    std::int64_t lastDurationMs = 0;
    int exitCode = -1;
    std::string result = "never run";
    std::string lastError;
    std::uint64_t runs = 0;
    std::uint64_t metricsPublished = 0;
    std::uint64_t entriesDropped = 0;
    std::uint64_t entriesSkipped = 0;       // entries with a null value: no reading, not an error
};

class SourceExec : public agent::Source {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }

    agent::ModuleDescription describe() const override {
        return {static_cast<agent::Roles>(agent::Role::Source),
                {"/plugins/list", "/plugins/run", "/plugins/update", "/plugins/enable", "/plugins/disable"},
                2,
                {"/plugins/run", "/plugins/update"}}; // they wait for a run or a clone
    }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        interval_ = config.getInt("interval");
        pluginsDir_ = config.getPath("pluginsdir");
        user_ = config.getString("pluginsuser");
        gitTemplate_ = config.getString("git");
        branch_ = config.getString("branch");
        cloneTimeout_ = config.getInt("clone_timeout");
        parallelClones_ = config.getInt("max_parallel_clones");
        cloneSplay_ = config.getDouble("clone_splay");
        stdoutCap_ = config.getInt("stdout_cap");
        killGrace_ = config.getDouble("kill_grace");
        disableTtl_ = config.getInt("disable_ttl");
        if (interval_ < 1 || interval_ > 3600) errors.add(config, "interval", "must be between 1 and 3600 seconds");
        if (pluginsDir_.empty() || pluginsDir_ == "/") errors.add(config, "pluginsdir", "must name a directory other than /");
        if (user_.empty() || user_ == "root" || user_ == "0") errors.add(config, "pluginsuser", "plugins never run as root");
        if (branch_.empty()) errors.add(config, "branch", "must not be empty");
        if (cloneTimeout_ < 1) errors.add(config, "clone_timeout", "must be at least 1 second");
        gitHelper_ = gitHelperPath();
        if (gitHelper_.empty() || ::access(gitHelper_.c_str(), X_OK) != 0)
            errors.add("source-exec: the git helper " + (gitHelper_.empty() ? "source-exec-git" : gitHelper_) +
                       " is missing or not executable (it is installed next to the module's file)");
        if (parallelClones_ < 1 || parallelClones_ > 64) errors.add(config, "max_parallel_clones", "must be between 1 and 64");
        if (cloneSplay_ < 0) errors.add(config, "clone_splay", "must not be negative");
        if (stdoutCap_ < 1024) errors.add(config, "stdout_cap", "must be at least 1024 bytes");
        if (killGrace_ < 0 || killGrace_ > 60) errors.add(config, "kill_grace", "must be between 0 and 60 seconds");
        if (disableTtl_ < 1) errors.add(config, "disable_ttl", "must be at least 1 second");
        errors.throwIfAny();
    }

    Poco::Timespan collectInterval() const override { return 0; } // schedules itself

    void start(agent::Context& context) override {
        context_ = &context;
        // Once per start: which kernel calls the runner uses, and which fallbacks replace missing ones.
        context.logger().information(agent::exec::describeKernelSupport());
        supervisor_ = std::make_unique<agent::exec::PluginSupervisor>();
        agent::exec::CloneQueue::Options options;
        options.perServer = static_cast<unsigned>(parallelClones_);
        options.splay = std::chrono::milliseconds(static_cast<long>(cloneSplay_ * 1000));
        options.retryInitial = std::chrono::seconds(interval_);
        options.retryMax = std::chrono::minutes(10);
        cloneQueue_ = std::make_unique<agent::exec::CloneQueue>(
            gitHelper_, options,
            [this](const std::string& key, const agent::exec::GitResult& result) { checkoutDone(key, result); });
        disabled_ = std::make_unique<agent::exec::DisabledPlugins>(context.stateDir() + "/disabled.json",
                                                                   std::chrono::seconds(disableTtl_));
        if (std::string error = disabled_->load(); !error.empty()) context.logger().warning(error);
        syncTask_ = context.scheduler().every("source-exec sync", Poco::Timespan(interval_, 0), 0, [this] { sync(); });
        registerRoutes(context.routes());
    }

    // Tasks cancelled, queued checkouts dropped and running helpers killed (about 0.2 s), running
    // plugins ended with min(kill_grace, 2 s) of grace (about that plus the 1 s drain limit).
    void stop() override {
        if (!context_) return;
        stopping_ = true;
        context_->scheduler().cancel(syncTask_);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            for (auto& [key, plugin] : plugins_) {
                if (plugin.task != 0) context_->scheduler().cancel(plugin.task);
                plugin.task = 0;
            }
        }
        cloneQueue_->stop();
        supervisor_->stop(std::min(killGraceMs(), kMaxStopGrace));
    }

    // `agent once`: every checked-out periodic plugin starts at once; waits for all of them.
    void collect(agent::Batch& out) override {
        sync();
        cloneQueue_->waitIdle(std::chrono::seconds(cloneTimeout_) + std::chrono::milliseconds(static_cast<long>(cloneSplay_ * 1000)) +
                              std::chrono::seconds(5));
        std::vector<std::string> keys;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            for (const auto& [key, plugin] : plugins_)
                if (plugin.period > 0 && plugin.checkedOut) keys.push_back(key);
        }
        std::vector<std::pair<std::string, std::future<agent::exec::RunResult>>> started;
        for (const std::string& key : keys) {
            auto promise = std::make_shared<std::promise<agent::exec::RunResult>>();
            std::future<agent::exec::RunResult> future = promise->get_future();
            if (startRun(key, std::nullopt, std::nullopt, [promise](agent::exec::RunResult result) {
                    promise->set_value(std::move(result));
                }) == StartState::Started)
                started.emplace_back(key, std::move(future));
        }
        for (auto& [key, future] : started) {
            Outcome outcome = complete(key, future.get());
            appendMetrics(key, outcome, out);
        }
    }

private:
    // Brings the plugin table in line with the registry: new plugins cloned and scheduled,
    // changed periods rescheduled, removed plugins unscheduled.
    void sync() {
        agent::Registry& registry = context_->registry();
        const agent::HostIdentity identity = context_->identity();
        std::map<std::string, Plugin> wanted;
        for (const std::string& ns : identity.namespaces) {
            if (!agent::exec::isSafeComponent(ns)) continue;
            for (const agent::Registry::Entry& entry : registry.entries(ns)) {
                auto type = entry.find("measurement_type");
                if (type == entry.end() || type->second != "PLUGIN") continue;
                Plugin plugin;
                plugin.ns = ns;
                plugin.git = entry.count("git") ? entry.at("git") : "";
                plugin.parameters = entry.count("parameters") ? entry.at("parameters") : "";
                std::string error;
                const std::optional<std::string> path = agent::exec::projectPath(plugin.git, error);
                Poco::Int64 period = 0;
                const std::string interval = entry.count("interval") ? entry.at("interval") : "0";
                if (!path || !Poco::NumberParser::tryParse64(interval, period) || period < 0) {
                    warnOnce(ns + " " + plugin.git, "registry entry " + (entry.count("name") ? entry.at("name") : "?") +
                                                        " in " + ns + " refused: " +
                                                        (path ? "interval \"" + interval + "\" is not a number of seconds" : error));
                    continue;
                }
                plugin.project = agent::exec::projectName(*path);
                plugin.period = period;
                const std::string key = ns + "/" + plugin.project;
                if (wanted.count(key) != 0) {
                    warnOnce("conflict " + key + " " + plugin.git,
                             "two plugins named " + plugin.project + " in " + ns + ": kept " + wanted[key].git +
                                 ", ignored " + plugin.git);
                    continue;
                }
                wanted.emplace(key, std::move(plugin));
            }
        }

        std::vector<std::string> toClone;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            for (auto it = plugins_.begin(); it != plugins_.end();) {
                if (wanted.count(it->first) != 0) {
                    ++it;
                    continue;
                }
                if (it->second.task != 0) context_->scheduler().cancel(it->second.task);
                context_->logger().information("plugin %s left the registry; no longer run", it->first);
                it = plugins_.erase(it);
            }
            for (auto& [key, fresh] : wanted) {
                auto [it, added] = plugins_.emplace(key, fresh);
                Plugin& plugin = it->second;
                if (!added && (plugin.period != fresh.period || plugin.parameters != fresh.parameters || plugin.git != fresh.git)) {
                    if (plugin.task != 0) context_->scheduler().cancel(plugin.task);
                    plugin.task = 0;
                    plugin.period = fresh.period;
                    plugin.parameters = fresh.parameters;
                    plugin.git = fresh.git;
                }
                if (!plugin.checkedOut) toClone.push_back(key);
                else if (plugin.task == 0) schedule(key, plugin);
            }
        }
        for (const std::string& key : toClone) checkout(key);
        publishHealth();
    }

    // A plugin that has no checkout yet: a cached checkout is used as it is (a cheap read), else
    // a clone is queued (CloneQueue: never on this thread; not again before its retry time).
    void checkout(const std::string& key) {
        agent::exec::CloneJob job;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = plugins_.find(key);
            if (it == plugins_.end()) return;
            job.key = key;
            job.url = agent::exec::cloneUrl(gitTemplate_, it->second.git);
            job.target = pluginsDir_ + "/" + key;
        }
        job.branch = branch_;
        job.timeout = std::chrono::seconds(cloneTimeout_);
        if (agent::exec::GitRepository::checkedOutCommit(job.target)) {
            agent::exec::GitResult cached;
            cached.ok = true;
            checkoutDone(key, cached);
            return;
        }
        cloneQueue_->enqueue(std::move(job));
    }

    // A checkout is there (or failed): on a clone queue thread, or on the sync's.
    void checkoutDone(const std::string& key, const agent::exec::GitResult& result) {
        if (stopping_) return;
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = plugins_.find(key);
        if (it == plugins_.end()) return;
        Plugin& plugin = it->second;
        if (!result.ok) {
            std::string retry;
            if (const auto at = cloneQueue_->retryAt(key))
                retry = "; next try in " +
                        std::to_string(std::chrono::ceil<std::chrono::seconds>(*at - SteadyClock::now()).count()) + " s";
            if (plugin.lastError != result.error)
                context_->logger().error("plugin %s: checkout failed: %s%s", key, result.error, retry);
            plugin.lastError = result.error;
            plugin.result = "checkout_failed";
            return; // tried again at a sync after its backoff
        }
        if (result.changed) context_->logger().information("plugin %s checked out at %s", key, result.commit);
        plugin.checkedOut = true;
        plugin.lastError.clear();
        schedule(key, plugin);
    }

    // Needs mutex_. A stable offset per plugin spreads plugins of one period over it. The task
    // only starts the run (PluginSupervisor) and returns; the result is handled by a task posted
    // to the module's executor when the run is over.
    void schedule(const std::string& key, Plugin& plugin) {
        if (stopping_ || plugin.period <= 0 || plugin.task != 0) return;
        const auto periodMs = static_cast<std::uint64_t>(plugin.period) * 1000;
        const std::uint64_t offsetMs = std::hash<std::string>{}(key) % periodMs;
        plugin.nextDue = SteadyClock::now() + std::chrono::milliseconds(offsetMs);
        plugin.task = context_->scheduler().every(
            "plugin " + key, Poco::Timespan(plugin.period, 0),
            Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(offsetMs) * 1000), [this, key] { startScheduled(key); });
    }

    // One period of a plugin: starts its run unless the previous one is still going (skipped).
    void startScheduled(const std::string& key) {
        startRun(key, std::nullopt, std::nullopt, [this, key](agent::exec::RunResult result) {
            if (stopping_) return;
            context_->scheduler().post("plugin " + key, [this, key, result = std::move(result)]() mutable {
                if (stopping_) return;
                Outcome outcome = complete(key, std::move(result));
                agent::Batch batch;
                appendMetrics(key, outcome, batch);
                if (!batch.empty()) context_->bus().publish(std::move(batch));
            });
        });
    }

    enum class StartState { Started, Unknown, Running, Disabled };

    // Starts a run through the supervisor; `done` gets its result (on the supervisor's thread).
    // Scheduled runs (no timeout given) use period - 0.5 s, skip a disabled plugin, skip and count
    // a period while the previous run is going, and measure their start delay; an on-demand run
    // gives its timeout and may replace the parameters.
    StartState startRun(const std::string& key, std::optional<std::chrono::milliseconds> timeout,
                        const std::optional<std::string>& parameters, agent::exec::PluginSupervisor::Callback done) {
        agent::exec::RunRequest request;
        std::optional<SteadyClock::time_point> due;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = plugins_.find(key);
            if (it == plugins_.end() || stopping_) return StartState::Unknown;
            Plugin& plugin = it->second;
            const SteadyClock::time_point steadyNow = SteadyClock::now();
            if (!timeout && plugin.period > 0 && plugin.nextDue != SteadyClock::time_point{}) {
                // The due time of this period: the latest expected one that is not in the future.
                const auto period = std::chrono::seconds(plugin.period);
                SteadyClock::time_point expected = plugin.nextDue;
                while (expected + period <= steadyNow) expected += period;
                plugin.nextDue = expected + period;
                due = expected;
            }
            if (plugin.running) {
                if (!timeout) {
                    ++plugin.skipped;
                    if (plugin.lastSkipLog == SteadyClock::time_point{} || steadyNow - plugin.lastSkipLog >= kSkipLogInterval) {
                        plugin.lastSkipLog = steadyNow;
                        context_->logger().warning("plugin %s: still running when due again; period skipped (%s skipped so far)",
                                                   key, std::to_string(plugin.skipped));
                    }
                }
                return StartState::Running;
            }
            if (!timeout && disabled_->isDisabled(plugin.ns, plugin.project, now())) return StartState::Disabled;
            plugin.running = true;
            plugin.lastStart = now();
            request.directory = pluginsDir_ + "/" + plugin.ns + "/" + plugin.project;
            request.args = agent::exec::splitParameters(parameters ? *parameters : plugin.parameters);
            request.timeout = timeout ? *timeout : std::chrono::milliseconds(std::max<std::int64_t>(500, plugin.period * 1000 - 500));
            request.environment = {{"AGENT_NS", plugin.ns}, {"AGENT_PLUGIN", plugin.project}};
        }
        request.user = user_;
        request.killGrace = killGraceMs();
        request.stdoutCap = static_cast<std::size_t>(stdoutCap_);
        supervisor_->start(request, std::move(done));
        if (due) {
            const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - *due).count();
            std::lock_guard<std::mutex> lock(mutex_);
            startDelays_.push_back(std::max<std::int64_t>(0, delay));
            if (startDelays_.size() > kDelaySamples) startDelays_.pop_front();
        }
        return StartState::Started;
    }

    std::chrono::milliseconds killGraceMs() const { return std::chrono::milliseconds(static_cast<long>(killGrace_ * 1000)); }

    // What one run produced.
    struct Outcome {
        agent::exec::RunResult result;
        RunStatus status = RunStatus::NotRunnable;
        agent::exec::ParsedOutput parsed;
        std::string problem;
    };

    // A finished run: parses its output, logs a failure, updates the plugin's row.
    Outcome complete(const std::string& key, agent::exec::RunResult result) {
        Outcome outcome;
        const std::string ns = nsOf(key);
        const std::string project = projectOf(key);
        outcome.result = std::move(result);
        outcome.status = outcome.result.status;
        outcome.problem = outcome.result.reason;
        if (outcome.status == RunStatus::Ok) {
            outcome.parsed = agent::exec::parsePluginOutput(outcome.result.output, ns, project);
            if (!outcome.parsed.valid) {
                outcome.status = RunStatus::BadOutput;
                outcome.problem = outcome.parsed.error;
            }
        }
        // A run with null entries only (no reading this time) is a good run: nothing to log.
        if (outcome.status != RunStatus::Ok || outcome.parsed.dropped > 0) logOutcome(key, outcome);
        std::lock_guard<std::mutex> lock(mutex_);
        ++runsByResult_[agent::exec::statusTag(outcome.status)];
        auto it = plugins_.find(key);
        if (it == plugins_.end()) return outcome;
        Plugin& plugin = it->second;
        plugin.running = false;
        ++plugin.runs;
        plugin.lastDurationMs = outcome.result.duration.count();
        plugin.exitCode = outcome.result.exitCode;
        plugin.result = agent::exec::statusTag(outcome.status);
        plugin.lastError = outcome.status == RunStatus::Ok ? std::string() : outcome.problem;
        plugin.entriesDropped += outcome.parsed.dropped;
        plugin.entriesSkipped += outcome.parsed.skipped;
        return outcome;
    }

    // One warning for a failed run or dropped entries. Bad output shows its first bytes, so that
    // an operator sees what the plugin printed (an error page, a shell error) without running it.
    void logOutcome(const std::string& key, const Outcome& outcome) {
        const std::string& output = outcome.result.output;
        context_->logger().warning(
            "plugin %s: %s%s%s%s%s", key, std::string(agent::exec::statusTag(outcome.status)),
            outcome.problem.empty() ? std::string() : ": " + outcome.problem,
            outcome.status == RunStatus::BadOutput && !output.empty()
                ? "; output: " + agent::exec::outputExcerpt(output)
                : std::string(),
            outcome.parsed.dropped > 0
                ? "; dropped " + std::to_string(outcome.parsed.dropped) + " entries (" + outcome.parsed.firstProblem + ")"
                : std::string(),
            outcome.result.stderrTail.empty() ? std::string() : "; stderr: " + outcome.result.stderrTail);
    }

    // A scheduled run's metrics and its result metric go to `out`.
    void appendMetrics(const std::string& key, Outcome& outcome, agent::Batch& out) {
        const std::size_t published = outcome.parsed.metrics.size();
        for (agent::Metric& metric : outcome.parsed.metrics) out.push_back(std::move(metric));
        out.push_back(agent::exec::resultMetric(nsOf(key), projectOf(key), outcome.status, now()));
        std::lock_guard<std::mutex> lock(mutex_);
        if (auto it = plugins_.find(key); it != plugins_.end()) it->second.metricsPublished += published;
    }

    static std::string nsOf(const std::string& key) { return key.substr(0, key.find('/')); }
    static std::string projectOf(const std::string& key) { return key.substr(key.find('/') + 1); }

    // The plugin routes of docs/ARCHITECTURE.md §11. `ns` and `repo` only ever select an entry of
    // the plugin table (which holds names already checked); they never reach a path themselves.
    void registerRoutes(agent::RouteRegistry& routes) {
        routes.add("/plugins/list", {"GET"}, [this](const agent::HttpRequest& request) {
            publishHealth();
            Poco::JSON::Array list;
            const auto ns = request.query.find("ns");
            std::lock_guard<std::mutex> lock(mutex_);
            for (const auto& [key, plugin] : plugins_)
                if (ns == request.query.end() || ns->second == plugin.ns) list.add(row(plugin));
            std::ostringstream out;
            list.stringify(out);
            return agent::jsonResponse(200, out.str());
        });
        routes.add("/plugins/run", {"GET", "POST"}, [this](const agent::HttpRequest& request) {
            std::string key;
            if (agent::HttpResponse error; !find(request, key, error)) return error;
            Poco::Int64 seconds = 10;
            if (auto it = request.query.find("timeout"); it != request.query.end() &&
                                                          (!Poco::NumberParser::tryParse64(it->second, seconds) || seconds < 1 || seconds > 3600))
                return agent::errorResponse(400, "timeout must be a number of seconds from 1 to 3600");
            std::optional<std::string> param;
            if (auto it = request.query.find("param"); it != request.query.end()) param = it->second;
            auto promise = std::make_shared<std::promise<agent::exec::RunResult>>();
            std::future<agent::exec::RunResult> future = promise->get_future();
            const StartState state = startRun(key, std::chrono::seconds(seconds), param, [promise](agent::exec::RunResult result) {
                promise->set_value(std::move(result));
            });
            if (state == StartState::Running) return agent::errorResponse(409, "plugin is running");
            if (state != StartState::Started) return agent::errorResponse(404, "unknown plugin " + key);
            const Outcome outcome = complete(key, future.get());
            Poco::JSON::Object answer;
            answer.set("ns", nsOf(key));
            answer.set("project", projectOf(key));
            answer.set("result", agent::exec::statusTag(outcome.status));
            answer.set("exit_status", outcome.result.exitCode);
            answer.set("duration_ms", static_cast<Poco::Int64>(outcome.result.duration.count()));
            answer.set("output", outcome.result.output.substr(0, 1 << 20));
            answer.set("stderr", outcome.result.stderrTail);
            if (!outcome.problem.empty()) answer.set("error", outcome.problem);
            std::ostringstream out;
            answer.stringify(out);
            return agent::jsonResponse(200, out.str());
        });
        routes.add("/plugins/update", {"GET", "POST"}, [this](const agent::HttpRequest& request) {
            std::string key;
            if (agent::HttpResponse error; !find(request, key, error)) return error;
            std::string git;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                git = plugins_.at(key).git;
            }
            const agent::exec::GitResult result = cloneQueue_->update(agent::exec::cloneUrl(gitTemplate_, git), branch_,
                                                                      pluginsDir_ + "/" + key, std::chrono::seconds(cloneTimeout_));
            if (!result.ok) return agent::errorResponse(503, "update of " + key + " failed: " + result.error);
            cloneQueue_->forgetFailures(key);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (auto it = plugins_.find(key); it != plugins_.end()) {
                    it->second.checkedOut = true;
                    if (it->second.task == 0) schedule(key, it->second);
                }
            }
            return agent::jsonResponse(200, "{\"commit\":\"" + result.commit + "\",\"changed\":" +
                                                (result.changed ? "true" : "false") + "}");
        });
        for (const bool enable : {true, false}) {
            routes.add(enable ? "/plugins/enable" : "/plugins/disable", {"GET", "POST"},
                       [this, enable](const agent::HttpRequest& request) {
                           std::string key;
                           if (agent::HttpResponse error; !find(request, key, error)) return error;
                           const std::string problem = enable ? disabled_->enable(nsOf(key), projectOf(key))
                                                              : disabled_->disable(nsOf(key), projectOf(key), now());
                           if (!problem.empty()) context_->logger().error("plugin %s: %s", key, problem);
                           const std::int64_t until = disabled_->disabledUntil(nsOf(key), projectOf(key), now());
                           return agent::jsonResponse(200, "{\"ns\":\"" + nsOf(key) + "\",\"project\":\"" + projectOf(key) +
                                                               "\",\"enabled\":" + (until == 0 ? "true" : "false") +
                                                               ",\"disabled_until\":" + std::to_string(until) + "}");
                       });
        }
    }

    // The plugin a request names by ns and repo (the git address as the registry lists it, or
    // the project name when it is unambiguous in that namespace). False with the answer if none.
    bool find(const agent::HttpRequest& request, std::string& key, agent::HttpResponse& error) {
        const auto ns = request.query.find("ns");
        const auto repo = request.query.find("repo");
        if (ns == request.query.end() || repo == request.query.end()) {
            error = agent::errorResponse(400, "ns and repo are required");
            return false;
        }
        if (!agent::exec::isSafeComponent(ns->second)) {
            error = agent::errorResponse(400, "ns is not a valid namespace");
            return false;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<std::string> matches;
        bool knownNs = false;
        for (const auto& [candidate, plugin] : plugins_) {
            if (plugin.ns != ns->second) continue;
            knownNs = true;
            if (plugin.git == repo->second) {
                matches = {candidate};
                break;
            }
            if (plugin.project == repo->second) matches.push_back(candidate);
        }
        if (matches.size() == 1) {
            key = matches.front();
            return true;
        }
        error = matches.empty() ? agent::errorResponse(404, knownNs ? "no plugin " + repo->second.substr(0, 200) + " in namespace " + ns->second
                                                                   : "no plugins in namespace " + ns->second)
                                : agent::errorResponse(400, "repo " + repo->second + " is ambiguous in " + ns->second + "; give the git address");
        return false;
    }

    // Needs mutex_: one row of the plugin table.
    Poco::JSON::Object::Ptr row(const Plugin& plugin) {
        Poco::JSON::Object::Ptr entry = new Poco::JSON::Object;
        entry->set("ns", plugin.ns);
        entry->set("repo", plugin.git);
        entry->set("project", plugin.project);
        entry->set("period", plugin.period);
        entry->set("enabled", !disabled_->isDisabled(plugin.ns, plugin.project, now()));
        entry->set("running", plugin.running);
        entry->set("last_start", plugin.lastStart);
        entry->set("duration_ms", plugin.lastDurationMs);
        entry->set("exit_status", plugin.exitCode);
        entry->set("result", plugin.result);
        entry->set("runs", static_cast<Poco::UInt64>(plugin.runs));
        entry->set("skipped", static_cast<Poco::UInt64>(plugin.skipped));
        entry->set("metrics_published", static_cast<Poco::UInt64>(plugin.metricsPublished));
        entry->set("entries_dropped", static_cast<Poco::UInt64>(plugin.entriesDropped));
        entry->set("entries_skipped", static_cast<Poco::UInt64>(plugin.entriesSkipped));
        if (!plugin.lastError.empty()) entry->set("last_error", plugin.lastError);
        // For the status page: when the schedule runs it next (0 = not scheduled), and until when
        // it is disabled (0 = enabled).
        entry->set("disabled_until", disabled_->disabledUntil(plugin.ns, plugin.project, now()));
        std::int64_t nextRun = 0;
        if (plugin.task != 0 && plugin.period > 0 && plugin.nextDue != SteadyClock::time_point{}) {
            // The first due time from now on, whole periods after the last one known.
            const SteadyClock::time_point steadyNow = SteadyClock::now();
            const SteadyClock::duration period = std::chrono::seconds(plugin.period);
            SteadyClock::time_point due = plugin.nextDue;
            if (due < steadyNow) due += period * ((steadyNow - due) / period + 1);
            nextRun = now() + std::chrono::ceil<std::chrono::seconds>(due - steadyNow).count();
        }
        entry->set("next_run", nextRun);
        return entry;
    }

    void warnOnce(const std::string& key, const std::string& message) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (warned_.insert(key).second) context_->logger().warning(message);
    }

    void publishHealth() {
        Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
        Poco::JSON::Object::Ptr plugins = new Poco::JSON::Object;
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [key, plugin] : plugins_) plugins->set(key, row(plugin));
        health->set("plugins", plugins);
        Poco::JSON::Object::Ptr runs = new Poco::JSON::Object;
        for (const auto& [result, count] : runsByResult_) runs->set(result, static_cast<Poco::UInt64>(count));
        health->set("runs_by_result", runs);
        health->set("running", static_cast<Poco::UInt64>(supervisor_->running()));
        health->set("supervised_threads", agent::exec::PluginSupervisor::threads());
        health->set("checkouts_queued", static_cast<Poco::UInt64>(cloneQueue_->queued()));
        health->set("checkouts_running", static_cast<Poco::UInt64>(cloneQueue_->active()));
        std::vector<std::int64_t> delays(startDelays_.begin(), startDelays_.end());
        std::sort(delays.begin(), delays.end());
        Poco::JSON::Object::Ptr delay = new Poco::JSON::Object;
        auto percentile = [&delays](double p) -> Poco::Int64 {
            if (delays.empty()) return 0;
            const auto index = static_cast<std::size_t>(p * static_cast<double>(delays.size() - 1) + 0.5);
            return delays[std::min(index, delays.size() - 1)];
        };
        delay->set("p50", percentile(0.50));
        delay->set("p99", percentile(0.99));
        delay->set("max", delays.empty() ? Poco::Int64(0) : Poco::Int64(delays.back()));
        delay->set("samples", static_cast<Poco::UInt64>(delays.size()));
        health->set("start_delay_ms", delay);
        context_->setHealth(health);
    }

    std::int64_t interval_ = 10;
    std::string pluginsDir_;
    std::string user_;
    std::string gitTemplate_;
    std::string branch_;
    std::int64_t cloneTimeout_ = 120;
    std::int64_t parallelClones_ = 2;
    double cloneSplay_ = 10;
    std::int64_t stdoutCap_ = 4 << 20;
    double killGrace_ = 2;
    std::int64_t disableTtl_ = 86400;

    agent::Context* context_ = nullptr;
    std::unique_ptr<agent::exec::PluginSupervisor> supervisor_; // one thread watching every running plugin
    std::unique_ptr<agent::exec::CloneQueue> cloneQueue_;      // clones apart, bounded per git server
    std::atomic<bool> stopping_{false};
    std::string gitHelper_; // source-exec-git next to this module
    std::unique_ptr<agent::exec::DisabledPlugins> disabled_;
    agent::TaskId syncTask_ = 0;

    std::mutex mutex_; // guards plugins_, warned_, runsByResult_ and startDelays_
    std::deque<std::int64_t> startDelays_; // ms, the last kDelaySamples scheduled runs
    std::map<std::string, std::uint64_t> runsByResult_;
    std::map<std::string, Plugin> plugins_; // by "<ns>/<project>"
    std::set<std::string> warned_;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SourceExec, "source-exec")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
