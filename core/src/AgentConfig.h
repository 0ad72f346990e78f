// The agent's own configuration: the core sections ([agent], [output], [log], [modules]), their
// schemas, the validation of any section against a schema, and which modules a file asks for.
#pragma once

#include "TomlConfiguration.h"

#include <agent/ModuleConfig.h>

#include <cstdint>
#include <string>
#include <vector>

namespace agent {

struct AgentSettings {
    // [agent]
    std::string listen;
    std::vector<std::string> ifacePrefixes;
    std::string registryAddr;
    std::string pluginsDir;
    std::string pluginsUser;
    std::string gitTemplate;
    std::string hostname; // override; empty = the system's
    std::string stateDir;
    std::vector<std::string> namespaces;
    std::string pidFile;
    std::int64_t registryIntervalSeconds = 600;
    std::int64_t registrySplaySeconds = 60; // at most registryIntervalSeconds
    double stopTimeoutSeconds = 10; // the whole stop: modules, their executors, the sinks' drain
    bool tidyTags = true;           // tag values trimmed, inner spaces -> '-' (the Go agent's rule)
    // [output]
    std::vector<std::string> outputNames;
    std::vector<std::string> servers;
    std::int64_t bufferSize = 1000;
    double retryInitialSeconds = 0.5;
    double retryMaxSeconds = 30;
    double drainSeconds = 3;
    std::uint64_t spoolMaxBytes = 512ull << 20;
    std::uint64_t spoolSegmentBytes = 8ull << 20;
    std::string spoolFsync = "interval"; // every_batch | interval | never
    double spoolFsyncIntervalSeconds = 1;
    // [log]
    std::string logDir;
    std::string logLevel; // Poco's name: debug, information, warning, error, ...
    int logRotateNum = 5;
    std::int64_t logRotateSize = 0;
    // [modules]
    std::string moduleDir;
    std::vector<std::string> modules; // to load, in order
    bool modulesDerived = false;      // true when [modules] load was absent
    // Derived modules left out because they are not installed and nothing depends on them
    // (api-http, derived from [agent] listen alone): one line each, saying so.
    std::vector<std::string> skippedModules;
};

class AgentConfig {
public:
    // Loads and validates a file plus -D overrides. Throws ConfigFileError for a file that cannot
    // be parsed, ConfigError listing every bad key of the core sections otherwise.
    struct Paths {
        std::string defaultModuleDir; // used when [modules] dir is absent
        std::string baseDir;          // relative paths are resolved against it; "" = the cwd
    };
    static AgentConfig load(const std::string& path, const std::vector<std::string>& overrides, const Paths& paths);
    static AgentConfig fromToml(Poco::AutoPtr<TomlConfiguration> toml, const Paths& paths);

    const AgentSettings& settings() const { return settings_; }
    Poco::AutoPtr<TomlConfiguration> toml() const { return toml_; }

    // A view of one section, backed by its schema; `where` finds keys in the file.
    ModuleConfig section(const std::string& name, const ConfigSchema& schema) const;

    // Checks a section against a schema: unknown keys and wrong types, each with file and line.
    void validateSection(const std::string& name, const ConfigSchema& schema, ConfigErrors& errors) const;

    // Sections of the file that are neither core sections nor loaded modules.
    std::vector<std::string> unclaimedSections(const std::vector<std::string>& loadedModules) const;

    static const ConfigSchema& agentSchema();
    static const ConfigSchema& outputSchema();
    static const ConfigSchema& logSchema();
    static const ConfigSchema& modulesSchema();

private:
    AgentConfig(Poco::AutoPtr<TomlConfiguration> toml, std::string baseDir)
        : toml_(std::move(toml)), baseDir_(std::move(baseDir)) {}
    void readSettings(const std::string& defaultModuleDir);

    Poco::AutoPtr<TomlConfiguration> toml_;
    std::string baseDir_;
    AgentSettings settings_;
};

} // namespace agent
