// reporter-argus: registers this host as a node with an Argus master and reports its health (the
// health files other components drop in `<root>/<hostname>/health/`, plus the agent's own module
// health) every interval, as the Argus agent did (docs/ARCHITECTURE.md §13). Settings come from the
// environment, with the [reporter-argus] section as a fallback. The work (HTTP, backoff, node.json,
// health files) lives in ArgusReporter; this file holds the config table, start-up checks and the
// wiring to the agent.
#include "ArgusReporter.h"
#include "ArgusSettings.h"
#include "EventLine.h"
#include "HostFacts.h"
#include "NodeFile.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Module.h>
#include <agent/ModuleConfig.h>

#include <Poco/ClassLibrary.h>
#include <Poco/Environment.h>
#include <Poco/URI.h>

#include <cmath>
#include <optional>

#ifndef REPORTER_ARGUS_AGENT_VERSION
#define REPORTER_ARGUS_AGENT_VERSION "unknown"
#endif

namespace {

using namespace agent::argus;

constexpr const char* kModuleName = "reporter-argus";
constexpr double kMaxTimeoutSeconds = 60;

const agent::ConfigSchema kSchema = {
    {kMasterEndpoint.key, agent::ConfigType::String, "",
     "Argus master, host:port or http://host:port (MASTER_ENDPOINT wins)"},
    {kReportInterval.key, agent::ConfigType::Integer, std::to_string(kDefaultReportIntervalSeconds),
     "seconds between health reports (REPORT_INTERVAL_SECONDS wins)"},
    {kHostname.key, agent::ConfigType::String, "",
     "the node's host name; \"\" = the agent's host name (AGENT_HOSTNAME wins)"},
    {kEnv.key, agent::ConfigType::String, "", "the node's env, with user and instance (AGENT_ENV wins)"},
    {kUser.key, agent::ConfigType::String, "", "the node's user, with env and instance (AGENT_USER wins)"},
    {kInstance.key, agent::ConfigType::String, "", "the node's instance, with env and user (AGENT_INSTANCE wins)"},
    {"root", agent::ConfigType::String, "/private/argus/agent",
     "directory holding <hostname>/node.json and <hostname>/health/"},
    {"retry_initial", agent::ConfigType::Float, "1", "seconds before the first retry when the master fails"},
    {"retry_max", agent::ConfigType::Float, "60", "longest wait between retries, in seconds"},
    {"timeout", agent::ConfigType::Float, "3", "seconds allowed to connect, to send and to receive, each"},
};

std::chrono::milliseconds milliseconds(double seconds) {
    return std::chrono::milliseconds(std::llround(seconds * 1000));
}

std::optional<RawSetting> fromEnvironment(const Setting& setting) {
    if (!Poco::Environment::has(setting.variable)) return std::nullopt;
    return RawSetting{Poco::Environment::get(setting.variable), setting.variable};
}

SettingLookup fromSection(const agent::ModuleConfig& config) {
    return [&config](const Setting& setting) -> std::optional<RawSetting> {
        if (!config.has(setting.key)) return std::nullopt;
        const std::string value = setting.key == std::string(kReportInterval.key)
                                      ? std::to_string(config.getInt(setting.key))
                                      : config.getString(setting.key);
        return RawSetting{value, config.where(setting.key) + ": [" + config.section() + "] " + setting.key};
    };
}

class ReporterArgus : public agent::Module {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }
    // A Reporter: stopped before the modules whose health it sends.
    agent::ModuleDescription describe() const override {
        return {static_cast<agent::Roles>(agent::Role::Reporter), {}, 1};
    }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        SettingsResult resolved = resolveSettings(fromEnvironment, fromSection(config));
        for (const std::string& problem : resolved.problems) errors.add(std::string(kModuleName) + ": " + problem);

        const double retryInitial = config.getDouble("retry_initial");
        const double retryMax = config.getDouble("retry_max");
        const double timeout = config.getDouble("timeout");
        if (!(retryInitial > 0)) errors.add(config, "retry_initial", "must be more than 0 seconds");
        if (!(retryMax >= retryInitial)) errors.add(config, "retry_max", "must be at least retry_initial");
        if (!(timeout > 0 && timeout <= kMaxTimeoutSeconds))
            errors.add(config, "timeout", "must be more than 0 and at most " + std::to_string(kMaxTimeoutSeconds) + " seconds");
        const std::string root = config.getPath("root");
        if (config.getString("root").empty()) errors.add(config, "root", "must name a directory");
        errors.throwIfAny();

        settings_ = std::move(resolved.settings);
        options_.masterUrl = settings_.masterUrl;
        options_.reportInterval = std::chrono::seconds(settings_.reportIntervalSeconds);
        options_.root = root;
        options_.retryInitial = milliseconds(retryInitial);
        options_.retryMax = milliseconds(retryMax);
        options_.requestTimeout = Poco::Timespan(milliseconds(timeout).count() * 1000);
        options_.version = REPORTER_ARGUS_AGENT_VERSION;
    }

    // Throws (the agent then refuses to start) when the root is not writable or no identity can
    // be found; the reporter's thread starts only once everything is in place.
    void start(agent::Context& context) override {
        ReporterOptions options = options_;
        options.hostname = settings_.hostname.empty() ? context.identity().hostname : settings_.hostname;
        if (!isUsableHostname(options.hostname))
            throw ArgusStartError(std::string(kModuleName) + ": the host name \"" + options.hostname +
                                  "\" cannot name a directory: set AGENT_HOSTNAME");
        const std::string hostDirectory = options.root + "/" + options.hostname;
        try {
            ensureWritableDirectory(hostDirectory + "/health");
        } catch (const NodeFileError& e) {
            throw ArgusStartError(std::string(kModuleName) + ": root " + options.root + " is not writable: " + e.what());
        }

        std::string problem;
        const std::optional<MasterNode> saved = loadNodeFile(hostDirectory + "/node.json", problem);
        if (!problem.empty())
            context.logger().warning(EventLine("node_file").add("result", "ignored").add("reason", problem).text());
        try {
            const ResolvedIdentity identity =
                resolveIdentity(settings_.identity, saved ? saved->identity : std::nullopt, options.hostname);
            options.identity = identity.identity;
            options.identitySource = toString(identity.source);
        } catch (const ArgusStartError& e) {
            throw ArgusStartError(std::string(kModuleName) + ": " + e.what());
        }
        options.savedNodeId = saved ? saved->id : std::string();

        const Poco::URI master(options.masterUrl);
        ReporterHooks hooks;
        hooks.currentIp = [host = master.getHost(), port = master.getPort()] { return addressTowards(host, port); };
        hooks.agentHealth = [&context] { return agentHealth(context); };
        hooks.publishHealth = [&context](Poco::JSON::Object::Ptr health) { context.setHealth(std::move(health)); };

        context.logger().information(EventLine("start")
                                         .add("master", options.masterUrl)
                                         .add("interval_s", static_cast<std::uint64_t>(settings_.reportIntervalSeconds))
                                         .add("hostname", options.hostname)
                                         .add("identity_source", options.identitySource)
                                         .add("saved_node_id", options.savedNodeId.empty() ? "none" : options.savedNodeId)
                                         .add("root", options.root)
                                         .text());
        reporter_ = std::make_unique<ArgusReporter>(std::move(options), std::move(hooks), context.logger());
        reporter_->start();
    }

    void stop() override {
        if (reporter_) reporter_->stop();
    }

private:
    // The report's "agent" entry: the agent's version and the health of every module.
    static Poco::JSON::Object::Ptr agentHealth(agent::Context& context) {
        Poco::JSON::Object::Ptr health = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
        health->set("version", std::string(REPORTER_ARGUS_AGENT_VERSION));
        health->set("modules", context.moduleHealth());
        return health;
    }

    ArgusSettings settings_;
    ReporterOptions options_;
    ArgusReporterPtr reporter_;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(ReporterArgus, "reporter-argus")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
