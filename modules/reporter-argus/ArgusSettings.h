// The reporter's settings, as Argus deployments give them: environment variables first, the
// module's config section as a fallback (docs/ARCHITECTURE.md §13), and the node identity (env,
// user, instance) in the documented order: the variables, a saved node.json, the host name.
//
// Pure functions of what they are given: the module reads the environment and the section, the
// tests pass maps.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace agent::argus {

// One setting: the environment variable that gives it and the config key that is its fallback.
struct Setting {
    const char* variable;
    const char* key;
};

inline constexpr Setting kMasterEndpoint{"MASTER_ENDPOINT", "master_endpoint"};
inline constexpr Setting kReportInterval{"REPORT_INTERVAL_SECONDS", "report_interval"};
inline constexpr Setting kHostname{"AGENT_HOSTNAME", "hostname"};
inline constexpr Setting kEnv{"AGENT_ENV", "env"};
inline constexpr Setting kUser{"AGENT_USER", "user"};
inline constexpr Setting kInstance{"AGENT_INSTANCE", "instance"};

inline constexpr int kDefaultReportIntervalSeconds = 60;

// A value as found, and where: "MASTER_ENDPOINT" for the environment, or
// "etc/agent.toml:12: [reporter-argus] master_endpoint" for the config section.
struct RawSetting {
    std::string value;
    std::string origin;
};

// Finds a setting in one source; nullopt when that source does not give it (or gives "").
using SettingLookup = std::function<std::optional<RawSetting>(const Setting&)>;

struct NodeIdentity {
    std::string env;
    std::string user;
    std::string instance;

    bool operator==(const NodeIdentity&) const = default;
};

struct ArgusSettings {
    std::string masterUrl; // http://host:port[/prefix], no trailing slash
    int reportIntervalSeconds = kDefaultReportIntervalSeconds;
    std::string hostname;                 // "" = the agent's host name
    std::optional<NodeIdentity> identity; // when the three settings are given
};

struct SettingsResult {
    ArgusSettings settings;
    std::vector<std::string> problems; // one line each, naming the variable (or key) and the value
};

// Each setting from the environment when it gives it, else from the config section.
SettingsResult resolveSettings(const SettingLookup& environment, const SettingLookup& section);

// "host:3000" -> "http://host:3000"; "" and the reason when the text is not an http:// URL.
std::string normalizeMasterEndpoint(const std::string& text, std::string& error);

// A host name that can name a directory under the root: not empty, no '/', not "." or "..".
bool isUsableHostname(const std::string& hostname);

// The first three '-'-separated parts of the host name ("dev-alice-1-gpu" -> dev, alice, 1).
std::optional<NodeIdentity> identityFromHostname(const std::string& hostname);

enum class IdentitySource { Settings, NodeFile, Hostname };

const char* toString(IdentitySource source);

struct ResolvedIdentity {
    NodeIdentity identity;
    IdentitySource source = IdentitySource::Settings;
};

// Refusing to start: the reason says what to set.
class ArgusStartError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The settings' identity, else the saved node's, else the host name's; throws ArgusStartError.
ResolvedIdentity resolveIdentity(const std::optional<NodeIdentity>& fromSettings,
                                 const std::optional<NodeIdentity>& fromNodeFile, const std::string& hostname);

} // namespace agent::argus
