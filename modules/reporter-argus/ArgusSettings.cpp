#include "ArgusSettings.h"

#include <Poco/Exception.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <array>
#include <climits>
#include <cstdint>

namespace agent::argus {
namespace {

std::string quoted(const RawSetting& raw) { return raw.origin + "=\"" + raw.value + "\""; }

// Digits only (no sign, no blanks, no fraction), 1 .. INT_MAX.
std::optional<int> parsePositiveInteger(const std::string& text) {
    constexpr std::size_t kMaxDigits = 10; // INT_MAX has 10 digits
    if (text.empty() || text.size() > kMaxDigits) return std::nullopt;
    std::int64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (value < 1 || value > INT_MAX) return std::nullopt;
    return static_cast<int>(value);
}

void resolveMaster(const SettingLookup& lookup, SettingsResult& result) {
    const std::optional<RawSetting> raw = lookup(kMasterEndpoint);
    if (!raw) {
        result.problems.push_back(std::string(kMasterEndpoint.variable) +
                                  " is not set (nor [reporter-argus] " + kMasterEndpoint.key +
                                  "): give the Argus master's address, host:port or http://host:port");
        return;
    }
    std::string error;
    result.settings.masterUrl = normalizeMasterEndpoint(raw->value, error);
    if (!error.empty()) result.problems.push_back(quoted(*raw) + ": " + error);
}

void resolveInterval(const SettingLookup& lookup, SettingsResult& result) {
    const std::optional<RawSetting> raw = lookup(kReportInterval);
    if (!raw) return;
    if (const std::optional<int> seconds = parsePositiveInteger(raw->value)) {
        result.settings.reportIntervalSeconds = *seconds;
        return;
    }
    result.problems.push_back(quoted(*raw) + ": must be a positive integer (seconds between reports), at most " +
                              std::to_string(INT_MAX));
}

void resolveHostname(const SettingLookup& lookup, SettingsResult& result) {
    const std::optional<RawSetting> raw = lookup(kHostname);
    if (!raw) return;
    if (!isUsableHostname(raw->value)) {
        result.problems.push_back(quoted(*raw) + ": not usable as a host name (it names a directory: no '/', not . or ..)");
        return;
    }
    result.settings.hostname = raw->value;
}

// AGENT_ENV, AGENT_USER and AGENT_INSTANCE: all three or none.
void resolveIdentitySettings(const SettingLookup& lookup, SettingsResult& result) {
    const std::array<Setting, 3> settings{kEnv, kUser, kInstance};
    std::array<std::optional<RawSetting>, 3> found;
    std::string given;
    std::string missing;
    for (std::size_t i = 0; i < settings.size(); ++i) {
        found[i] = lookup(settings[i]);
        std::string& list = found[i] ? given : missing;
        list += (list.empty() ? "" : ", ") + (found[i] ? quoted(*found[i]) : std::string(settings[i].variable));
    }
    if (missing.empty()) {
        result.settings.identity = NodeIdentity{found[0]->value, found[1]->value, found[2]->value};
        return;
    }
    if (given.empty()) return;
    result.problems.push_back("AGENT_ENV, AGENT_USER and AGENT_INSTANCE go together (set all three or none): given " +
                              given + ", missing " + missing);
}

} // namespace

SettingsResult resolveSettings(const SettingLookup& environment, const SettingLookup& section) {
    const SettingLookup lookup = [&](const Setting& setting) -> std::optional<RawSetting> {
        std::optional<RawSetting> found = environment(setting);
        if (!found || found->value.empty()) found = section(setting);
        if (!found || found->value.empty()) return std::nullopt;
        return found;
    };
    SettingsResult result;
    resolveMaster(lookup, result);
    resolveInterval(lookup, result);
    resolveHostname(lookup, result);
    resolveIdentitySettings(lookup, result);
    return result;
}

std::string normalizeMasterEndpoint(const std::string& text, std::string& error) {
    const std::string trimmed = Poco::trim(text);
    if (trimmed.empty()) {
        error = "empty: give host:port or http://host:port";
        return {};
    }
    const std::string withScheme = trimmed.find("://") == std::string::npos ? "http://" + trimmed : trimmed;
    Poco::URI uri;
    try {
        uri = Poco::URI(withScheme);
    } catch (const Poco::Exception& e) {
        error = "not a URL: " + e.displayText();
        return {};
    }
    if (uri.getScheme() != "http") {
        error = "only http:// is supported (put a TLS proxy on loopback in front of an https master)";
        return {};
    }
    if (uri.getHost().empty()) {
        error = "no host: give host:port or http://host:port";
        return {};
    }
    if (!uri.getRawQuery().empty() || !uri.getFragment().empty()) {
        error = "a query or fragment has no meaning here: give http://host:port[/path]";
        return {};
    }
    std::string path = uri.getPath();
    while (!path.empty() && path.back() == '/') path.pop_back();
    uri.setPath(path);
    return uri.toString();
}

bool isUsableHostname(const std::string& hostname) {
    return !hostname.empty() && hostname != "." && hostname != ".." && hostname.find('/') == std::string::npos &&
           hostname.find('\0') == std::string::npos;
}

std::optional<NodeIdentity> identityFromHostname(const std::string& hostname) {
    constexpr std::size_t kParts = 3;
    std::array<std::string, kParts> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i < kParts; ++i) {
        const std::size_t dash = hostname.find('-', start);
        const bool last = i + 1 == kParts;
        const std::size_t end = last ? (dash == std::string::npos ? hostname.size() : dash) : dash;
        if (end == std::string::npos || end == start) return std::nullopt;
        parts[i] = hostname.substr(start, end - start);
        start = end + 1;
    }
    return NodeIdentity{parts[0], parts[1], parts[2]};
}

const char* toString(IdentitySource source) {
    switch (source) {
    case IdentitySource::Settings: return "settings";
    case IdentitySource::NodeFile: return "node.json";
    case IdentitySource::Hostname: return "hostname";
    }
    return "?";
}

ResolvedIdentity resolveIdentity(const std::optional<NodeIdentity>& fromSettings,
                                 const std::optional<NodeIdentity>& fromNodeFile, const std::string& hostname) {
    if (fromSettings) return {*fromSettings, IdentitySource::Settings};
    if (fromNodeFile) return {*fromNodeFile, IdentitySource::NodeFile};
    if (const std::optional<NodeIdentity> derived = identityFromHostname(hostname))
        return {*derived, IdentitySource::Hostname};
    throw ArgusStartError("cannot tell this node's env, user and instance: set AGENT_ENV, AGENT_USER and "
                          "AGENT_INSTANCE (the host name \"" + hostname +
                          "\" is not env-user-instance[-...], and there is no saved node.json that has them)");
}

} // namespace agent::argus
