// Core sections of the configuration: one schema table per section (the single place where the
// keys, their types and defaults are declared), validation, and module derivation for files
// written for the Go agent (which have no [modules] section).
#include "AgentConfig.h"

#include <agent/Metric.h>

#include <Poco/File.h>
#include <Poco/NumberParser.h>
#include <Poco/Path.h>
#include <Poco/String.h>

#include <algorithm>
#include <map>

#include <unistd.h>

namespace agent {
namespace {

const std::vector<std::string> kCoreSections = {"agent", "output", "log", "modules"};
// Where the Go agent served its API for local clients, next to its TCP port.
const char* const kGoAgentSocket = "/var/run/monitor-agent.sock";

// When the modules are derived from a Go agent's config (no [modules] load), a section named with
// one of these prefixes asks for the module of that name. Only the config goes by name; what a
// loaded module is comes from its describe() (docs/ARCHITECTURE.md §4.5).
bool looksLikeModule(const std::string& name) {
    for (const char* prefix : {"source-", "sink-", "api-", "reporter-"}) {
        if (name.rfind(prefix, 0) == 0) return true;
    }
    return false;
}

// Poco's logging level names for the Go agent's loglevel values.
bool pocoLogLevel(const std::string& level, std::string& out) {
    static const std::map<std::string, std::string> names = {
        {"TRACE", "trace"},     {"DEBUG", "debug"},   {"INFO", "information"}, {"INFORMATION", "information"},
        {"NOTICE", "notice"},   {"WARN", "warning"},  {"WARNING", "warning"},  {"ERROR", "error"},
        {"CRITICAL", "critical"}, {"FATAL", "fatal"},
    };
    auto it = names.find(Poco::toUpper(level));
    if (it == names.end()) return false;
    out = it->second;
    return true;
}

// Whether a value given on the command line parses as the schema's type.
bool parsesAs(const std::string& text, ConfigType type) {
    const std::string value = Poco::trim(text);
    switch (type) {
    case ConfigType::String:
    case ConfigType::StringList: return true;
    case ConfigType::Integer: {
        Poco::Int64 ignored = 0;
        return Poco::NumberParser::tryParse64(value, ignored);
    }
    case ConfigType::Float: {
        double ignored = 0;
        return Poco::NumberParser::tryParseFloat(value, ignored);
    }
    case ConfigType::Boolean: {
        bool ignored = false;
        return Poco::NumberParser::tryParseBool(value, ignored);
    }
    }
    return false;
}

bool kindMatches(TomlConfiguration::ValueKind kind, ConfigType type) {
    using Kind = TomlConfiguration::ValueKind;
    switch (type) {
    case ConfigType::String: return kind == Kind::String;
    case ConfigType::Integer: return kind == Kind::Integer;
    case ConfigType::Float: return kind == Kind::Float || kind == Kind::Integer;
    case ConfigType::Boolean: return kind == Kind::Boolean;
    case ConfigType::StringList: return kind == Kind::StringList;
    }
    return false;
}

// The Go agent also served its API on a unix socket at a fixed path, where lodastack/sdk-go
// clients post. A Go agent's file therefore implies [api-http] socket = that path, unless the file
// sets the key ("" turns it off). Where this process may not create the socket (the directory is
// not writable: an unprivileged agent without the packaged /run link), the API serves TCP only, and
// the reason is said like a skipped module's.
void deriveGoAgentSocket(TomlConfiguration& toml, AgentSettings& s) {
    if (std::find(s.modules.begin(), s.modules.end(), "api-http") == s.modules.end()) return;
    if (toml.info("api-http.socket") != nullptr) return;
    std::string target = kGoAgentSocket;
    // systemd's tmpfiles may make the path a link into the agent's runtime directory: the socket is
    // created where the link points (one level, relative to the link's directory).
    char link[4096];
    const ssize_t n = readlink(target.c_str(), link, sizeof link - 1);
    if (n > 0) {
        std::string resolved(link, static_cast<std::size_t>(n));
        target = resolved[0] == '/' ? resolved : Poco::Path(target).parent().toString() + resolved;
    }
    const std::string directory = Poco::Path(target).parent().toString();
    if (access(directory.c_str(), W_OK | X_OK) != 0) {
        s.skippedModules.push_back(std::string("api-http socket ") + kGoAgentSocket + ": " + directory +
                                   " is not writable by this process, so the API serves TCP only");
        return;
    }
    toml.setDerived("api-http.socket", kGoAgentSocket);
}

} // namespace

const ConfigSchema& AgentConfig::agentSchema() {
    static const ConfigSchema schema = {
        {"listen", ConfigType::String, "127.0.0.1:1232", "HTTP API address (host:port or unix:/path.sock); \"\" = no API"},
        {"ifaceprefix", ConfigType::StringList, R"(["eth","en"])", "network interfaces to watch, by name prefix"},
        {"registryaddr", ConfigType::String, "", "registry base URL, file:///path.json, or \"\" for standalone"},
        {"pluginsdir", ConfigType::String, "/usr/local/agent-plugins", "where plugin repositories are cloned"},
        {"pluginsuser", ConfigType::String, "nobody", "user plugins run as; never root"},
        {"git", ConfigType::String, "", "clone URL template; %s = group/project"},
        {"hostname", ConfigType::String, "", "host name to report; \"\" = the system's"},
        {"statedir", ConfigType::String, "/var/lib/agent", "spool, plugin state and caches"},
        {"namespaces", ConfigType::StringList, "[]", "this host's namespaces when there is no registry"},
        {"pidfile", ConfigType::String, "", "pid file; \"\" = <statedir>/agent.pid"},
        {"registry_interval", ConfigType::Integer, "600", "seconds between registry polls (plus a random splay)"},
        {"registry_splay", ConfigType::Integer, "60",
         "random delay of up to this many seconds before every registry poll, the first one too (at most registry_interval); spreads a fleet's polls"},
        {"stop_timeout", ConfigType::Float, "10",
         "seconds the whole stop may take (modules, their tasks, the sinks' drain), 1 to 300; tasks still running then are abandoned"},
        {"tidy_tags", ConfigType::Boolean, "true",
         "trim every tag value and turn its inner spaces into '-', as the Go agent did (\" web server 1 \" is \"web-server-1\")"},
    };
    return schema;
}

const ConfigSchema& AgentConfig::outputSchema() {
    static const ConfigSchema schema = {
        {"name", ConfigType::String, "", "the sink: nsq, influx or file"},
        {"names", ConfigType::StringList, "[]", "several sinks at once"},
        {"servers", ConfigType::StringList, "[]", "NSQ daemons (host:port)"},
        {"buffersize", ConfigType::Integer, "1000", "points held in memory per sink"},
        {"retry_initial", ConfigType::Float, "0.5", "seconds before the first retry of a failed write"},
        {"retry_max", ConfigType::Float, "30", "longest wait between retries, seconds"},
        {"drain_timeout", ConfigType::Float, "3", "seconds a sink may spend delivering its queue at shutdown"},
        {"spool_max_bytes", ConfigType::Integer, "536870912", "disk spool per sink, bytes; when full the oldest points go"},
        {"spool_segment_bytes", ConfigType::Integer, "8388608", "size of one spool segment file, bytes"},
        {"spool_fsync", ConfigType::String, "interval", "when the spool is flushed to disk: every_batch, interval or never"},
        {"spool_fsync_interval", ConfigType::Float, "1", "seconds between flushes with spool_fsync = \"interval\""},
    };
    return schema;
}

const ConfigSchema& AgentConfig::logSchema() {
    static const ConfigSchema schema = {
        {"logdir", ConfigType::String, "/var/log/agent", "directory of agent.log"},
        {"loglevel", ConfigType::String, "INFO", "TRACE, DEBUG, INFO, WARN, ERROR or FATAL"},
        {"logrotatenum", ConfigType::Integer, "5", "rotated log files kept"},
        {"logrotatesize", ConfigType::Integer, "104857600", "bytes at which agent.log rotates"},
    };
    return schema;
}

const ConfigSchema& AgentConfig::modulesSchema() {
    static const ConfigSchema schema = {
        {"dir", ConfigType::String, "", "directory of the module .so files; \"\" = next to the agent"},
        {"load", ConfigType::StringList, "", "modules to load; absent = derived from the sections present"},
    };
    return schema;
}

AgentConfig AgentConfig::load(const std::string& path, const std::vector<std::string>& overrides,
                              const Paths& paths) {
    Poco::AutoPtr<TomlConfiguration> toml = TomlConfiguration::fromFile(path);
    std::vector<std::string> errors;
    for (const std::string& item : overrides) {
        const auto eq = item.find('=');
        const std::string key = Poco::trim(item.substr(0, eq));
        if (eq == std::string::npos || key.find('.') == std::string::npos || key.front() == '.' || key.back() == '.') {
            errors.push_back("command line: -D" + item + ": expected -Dsection.key=value");
            continue;
        }
        toml->setFromCommandLine(key, item.substr(eq + 1));
    }
    if (!errors.empty()) throw ConfigError(errors);
    return fromToml(toml, paths);
}

AgentConfig AgentConfig::fromToml(Poco::AutoPtr<TomlConfiguration> toml, const Paths& paths) {
    AgentConfig config(std::move(toml), paths.baseDir);
    config.readSettings(paths.defaultModuleDir);
    return config;
}

ModuleConfig AgentConfig::section(const std::string& name, const ConfigSchema& schema) const {
    Poco::AutoPtr<TomlConfiguration> toml = toml_;
    Poco::AutoPtr<ModuleConfig::Configuration> root(const_cast<TomlConfiguration*>(toml_.get()), true);
    return ModuleConfig(
        name, schema, root, [toml](const std::string& key) { return toml->locate(key); }, baseDir_);
}

void AgentConfig::validateSection(const std::string& name, const ConfigSchema& schema, ConfigErrors& errors) const {
    const TomlConfiguration::KeyInfo* sectionInfo = toml_->info(name);
    if (sectionInfo != nullptr && sectionInfo->kind != TomlConfiguration::ValueKind::Table) {
        errors.add(toml_->locate(name) + ": " + name + ": must be a [section]");
        return;
    }
    for (const std::string& key : toml_->keysOf(name)) {
        const std::string full = name + "." + key;
        const std::string where = toml_->locate(full);
        auto known = std::find_if(schema.begin(), schema.end(), [&key](const ConfigKey& k) { return k.name == key; });
        if (known == schema.end()) {
            std::string valid;
            for (const ConfigKey& k : schema) valid += (valid.empty() ? "" : ", ") + k.name;
            errors.add(where + ": [" + name + "] " + key + ": unknown key (valid keys: " +
                       (valid.empty() ? "none" : valid) + ")");
            continue;
        }
        const TomlConfiguration::KeyInfo* keyInfo = toml_->info(full);
        const bool fromCommandLine = keyInfo->kind == TomlConfiguration::ValueKind::CommandLine;
        const bool ok = fromCommandLine ? parsesAs(toml_->getRawString(full), known->type)
                                        : kindMatches(keyInfo->kind, known->type);
        if (!ok) {
            errors.add(where + ": [" + name + "] " + key + ": must be " + toString(known->type) +
                       (fromCommandLine ? ", got \"" + toml_->getRawString(full) + "\"" : ""));
        }
    }
}

std::vector<std::string> AgentConfig::unclaimedSections(const std::vector<std::string>& loadedModules) const {
    std::vector<std::string> unclaimed;
    for (const std::string& section : toml_->sections()) {
        const bool core = std::find(kCoreSections.begin(), kCoreSections.end(), section) != kCoreSections.end();
        const bool module = std::find(loadedModules.begin(), loadedModules.end(), section) != loadedModules.end();
        if (!core && !module) unclaimed.push_back(section);
    }
    return unclaimed;
}

void AgentConfig::readSettings(const std::string& defaultModuleDir) {
    ConfigErrors errors;
    validateSection("agent", agentSchema(), errors);
    validateSection("output", outputSchema(), errors);
    validateSection("log", logSchema(), errors);
    validateSection("modules", modulesSchema(), errors);
    errors.throwIfAny(); // typed reads below rely on valid types

    const ModuleConfig agent = section("agent", agentSchema());
    const ModuleConfig output = section("output", outputSchema());
    const ModuleConfig log = section("log", logSchema());
    const ModuleConfig modules = section("modules", modulesSchema());
    AgentSettings& s = settings_;

    s.listen = agent.getString("listen");
    s.ifacePrefixes = agent.getStringList("ifaceprefix");
    s.registryAddr = agent.getString("registryaddr");
    s.pluginsDir = agent.getPath("pluginsdir");
    s.pluginsUser = agent.getString("pluginsuser");
    s.gitTemplate = agent.getString("git");
    s.hostname = agent.getString("hostname");
    s.stateDir = agent.getPath("statedir");
    s.namespaces = agent.getStringList("namespaces");
    s.registryIntervalSeconds = agent.getInt("registry_interval");
    if (s.registryIntervalSeconds < 1 || s.registryIntervalSeconds > 86400)
        errors.add(agent, "registry_interval", "must be between 1 and 86400 seconds");
    s.registrySplaySeconds = agent.getInt("registry_splay");
    if (s.registrySplaySeconds < 0 || s.registrySplaySeconds > 3600)
        errors.add(agent, "registry_splay", "must be between 0 and 3600 seconds");
    s.registrySplaySeconds = std::min(s.registrySplaySeconds, s.registryIntervalSeconds);
    s.stopTimeoutSeconds = agent.getDouble("stop_timeout");
    if (!(s.stopTimeoutSeconds >= 1 && s.stopTimeoutSeconds <= 300))
        errors.add(agent, "stop_timeout", "must be between 1 and 300 seconds");
    s.tidyTags = agent.getBool("tidy_tags");
    s.pidFile = agent.getString("pidfile").empty() ? s.stateDir + "/agent.pid" : agent.getPath("pidfile");
    if (s.stateDir.empty()) errors.add(agent, "statedir", "must not be empty");
    if (s.pluginsUser == "root" || s.pluginsUser == "0") errors.add(agent, "pluginsuser", "plugins never run as root");
    for (const std::string& ns : s.namespaces) {
        if (!isValidName(ns, 128)) errors.add(agent, "namespaces", "\"" + ns + "\" is not a valid namespace ([0-9A-Za-z._-]+, at most 128 characters)");
    }

    if (!output.getString("name").empty()) s.outputNames.push_back(output.getString("name"));
    for (const std::string& name : output.getStringList("names")) {
        if (std::find(s.outputNames.begin(), s.outputNames.end(), name) == s.outputNames.end()) s.outputNames.push_back(name);
    }
    s.servers = output.getStringList("servers");
    s.bufferSize = output.getInt("buffersize");
    s.retryInitialSeconds = output.getDouble("retry_initial");
    s.retryMaxSeconds = output.getDouble("retry_max");
    s.drainSeconds = output.getDouble("drain_timeout");
    if (s.bufferSize < 1) errors.add(output, "buffersize", "must be at least 1");
    if (s.retryInitialSeconds <= 0) errors.add(output, "retry_initial", "must be positive");
    if (s.retryMaxSeconds < s.retryInitialSeconds) errors.add(output, "retry_max", "must be at least retry_initial");
    if (s.drainSeconds < 0 || s.drainSeconds > 60) errors.add(output, "drain_timeout", "must be between 0 and 60 seconds");
    const std::int64_t spoolMax = output.getInt("spool_max_bytes");
    const std::int64_t segment = output.getInt("spool_segment_bytes");
    if (spoolMax < (1 << 20)) errors.add(output, "spool_max_bytes", "must be at least 1048576 (1 MiB)");
    if (segment < 4096 || segment > spoolMax / 4)
        errors.add(output, "spool_segment_bytes", "must be between 4096 and a quarter of spool_max_bytes");
    s.spoolMaxBytes = static_cast<std::uint64_t>(std::max<std::int64_t>(spoolMax, 0));
    s.spoolSegmentBytes = static_cast<std::uint64_t>(std::max<std::int64_t>(segment, 0));
    s.spoolFsync = output.getString("spool_fsync");
    if (s.spoolFsync != "every_batch" && s.spoolFsync != "interval" && s.spoolFsync != "never")
        errors.add(output, "spool_fsync", "\"" + s.spoolFsync + "\" is not one of every_batch, interval, never");
    s.spoolFsyncIntervalSeconds = output.getDouble("spool_fsync_interval");
    if (s.spoolFsyncIntervalSeconds <= 0 || s.spoolFsyncIntervalSeconds > 3600)
        errors.add(output, "spool_fsync_interval", "must be between 0 and 3600 seconds");

    s.logDir = log.getPath("logdir");
    if (!pocoLogLevel(log.getString("loglevel"), s.logLevel))
        errors.add(log, "loglevel", "\"" + log.getString("loglevel") + "\" is not one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL");
    const std::int64_t rotateNum = log.getInt("logrotatenum");
    s.logRotateSize = log.getInt("logrotatesize");
    if (rotateNum < 0 || rotateNum > 1000) errors.add(log, "logrotatenum", "must be between 0 and 1000");
    s.logRotateNum = static_cast<int>(std::clamp<std::int64_t>(rotateNum, 0, 1000));
    if (s.logRotateSize < 4096) errors.add(log, "logrotatesize", "must be at least 4096 bytes");

    s.moduleDir = modules.getString("dir").empty() ? defaultModuleDir : modules.getPath("dir");
    if (modules.has("load")) {
        for (const std::string& name : modules.getStringList("load")) {
            if (!isValidName(name, 128)) errors.add(modules, "load", "\"" + name + "\" is not a module name");
            else if (std::find(s.modules.begin(), s.modules.end(), name) != s.modules.end())
                errors.add(modules, "load", "\"" + name + "\" is listed twice");
            else s.modules.push_back(name);
        }
    } else {
        // A Go agent's file: interfaces and the host's figures are always collected (the Go agent
        // always reported both); the output chooses the sinks; an API address starts the API; a
        // registry starts the plugin runner; module sections add theirs.
        s.modulesDerived = true;
        auto add = [&s](const std::string& name) {
            if (std::find(s.modules.begin(), s.modules.end(), name) == s.modules.end()) s.modules.push_back(name);
        };
        add("source-netif");
        add("source-host");
        if (!s.registryAddr.empty()) {
            add("source-exec");  // PLUGIN entries
            add("source-probe"); // PORT and PROC entries
        }
        for (const std::string& name : s.outputNames) {
            const std::string lower = Poco::toLower(name);
            if (lower == "nsq") add("sink-nsq");
            else if (lower == "influx" || lower == "influxdb") add("sink-influx");
            else if (lower == "file") add("sink-file");
            else errors.add(output, output.has("name") && output.getString("name") == name ? "name" : "names",
                            "\"" + name + "\" is not a known output (nsq, influx, file)");
        }
        for (const std::string& section : toml_->sections()) {
            if (looksLikeModule(section)) add(section);
        }
        // The Go agent always served its API on `listen`; here the API is a module. A host
        // without it still collects and delivers, so its absence is said, not fatal, unless an
        // [api-http] section asks for it.
        if (!s.listen.empty() && std::find(s.modules.begin(), s.modules.end(), "api-http") == s.modules.end()) {
            const std::string path = s.moduleDir + "/api-http.so";
            if (Poco::File(path).exists()) {
                add("api-http");
            } else {
                s.skippedModules.push_back("api-http: not installed (" + path + "); derived from [agent] listen = \"" +
                                           s.listen + "\", so the HTTP API is off");
            }
        }
        deriveGoAgentSocket(*toml_, s);
    }
    errors.throwIfAny();
}

} // namespace agent
