// A module's configuration section: its keys declared once in a ConfigSchema (type, default,
// description), validated by the core before configure(), read through Poco's configuration
// classes, and the errors a module finds reported with the file and line of the key.
#pragma once

#include <Poco/AutoPtr.h>
#include <Poco/Util/AbstractConfiguration.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace agent {

enum class ConfigType { String, Integer, Float, Boolean, StringList };

const char* toString(ConfigType type);

struct ConfigKey {
    std::string name;
    ConfigType type;
    std::string defaultValue; // plain text: 10, true, /var/x; lists as JSON ["a", "b"]; "" = none
    std::string description;
    // When set and the key is absent from the section, the value of this global key
    // ("section.key") is used before the default: [sink-nsq] servers falls back to output.servers.
    std::string inheritFrom = {};
};

using ConfigSchema = std::vector<ConfigKey>;

// Thrown by configure() and by the core's validation. what() holds one line per bad key, each
// "FILE:LINE: [section] key: reason", so an operator sees every problem at once.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(const std::vector<std::string>& lines);
    const std::vector<std::string>& lines() const { return lines_; }

private:
    std::vector<std::string> lines_;
};

class ModuleConfig {
public:
    using Configuration = Poco::Util::AbstractConfiguration;
    // Maps a full key ("section.key") to where it was set ("etc/agent.toml:12"), or "" if unset.
    using Locator = std::function<std::string(const std::string& fullKey)>;

    // `baseDir` is the directory relative paths are resolved against (the agent's start dir).
    ModuleConfig(std::string section, const ConfigSchema& schema,
                 Poco::AutoPtr<Configuration> root, Locator locate, std::string baseDir = {});

    const std::string& section() const { return section_; }
    const ConfigSchema& schema() const { return schema_; }

    // True when the key is set in the section itself (not inherited, not defaulted).
    bool has(const std::string& key) const;

    // Typed getters: section value, else the inherited global key, else the schema default.
    // The core has already checked the types, so these only throw on a key missing from the
    // schema, which is a bug in the module.
    std::string getString(const std::string& key) const;
    std::int64_t getInt(const std::string& key) const;
    double getDouble(const std::string& key) const;
    bool getBool(const std::string& key) const;
    std::vector<std::string> getStringList(const std::string& key) const;
    // A string key holding a path, made absolute against the agent's start directory.
    std::string getPath(const std::string& key) const;

    // Where a key was set, for error messages: "FILE:LINE" (of the inherited key when the value
    // came from there), or "[section]" when it was not set at all.
    std::string where(const std::string& key) const;
    // The whole agent configuration (read-only use), e.g. agent.hostname.
    const Configuration& root() const { return *root_; }

private:
    const ConfigKey& keyOf(const std::string& key) const;
    // The raw string of the key after inheritance and defaults; found=false when none applies.
    std::string raw(const std::string& key, bool& found) const;

    std::string section_;
    const ConfigSchema& schema_;
    Poco::AutoPtr<Configuration> root_;
    Locator locate_;
    std::string baseDir_;
};

// Collects the problems configure() finds, so that all of them are reported together.
class ConfigErrors {
public:
    void add(const ModuleConfig& config, const std::string& key, const std::string& reason);
    void add(std::string line) { lines_.push_back(std::move(line)); }
    bool empty() const { return lines_.empty(); }
    // Throws ConfigError when anything was added.
    void throwIfAny() const;

private:
    std::vector<std::string> lines_;
};

// Lists are stored in Poco configurations as a JSON array string (["eth", "en"]); a plain
// string (from -Dsection.key=a,b) is split on commas. These convert both ways.
std::vector<std::string> parseStringList(const std::string& raw);
std::string formatStringList(const std::vector<std::string>& items);

} // namespace agent
