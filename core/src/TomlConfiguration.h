// A TOML file (parsed by toml++) flattened into a Poco configuration ("section.key"), keeping
// where every key was written so that errors can name the file and the line.
#pragma once

#include <agent/ModuleConfig.h>

#include <Poco/Util/MapConfiguration.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace agent {

// A syntax error or a value the agent cannot use; what() is "FILE:LINE:COLUMN: reason".
class ConfigFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class TomlConfiguration : public Poco::Util::MapConfiguration {
public:
    enum class ValueKind { Table, String, Integer, Float, Boolean, StringList, OtherList, CommandLine };

    struct KeyInfo {
        int line = 0;
        ValueKind kind = ValueKind::String;
        bool derived = false; // set by the agent, not written in the file (setDerived)
    };

    // Parses a file; throws ConfigFileError when it is missing, unreadable or not valid TOML.
    static Poco::AutoPtr<TomlConfiguration> fromFile(const std::string& path);
    // Parses text; `sourceName` stands for the file name in messages.
    static Poco::AutoPtr<TomlConfiguration> fromString(const std::string& text, const std::string& sourceName);

    // Applies -Dsection.key=value; typed later against the schema of the section.
    void setFromCommandLine(const std::string& key, const std::string& value);
    // Sets a string the file did not write but its kind implies (a Go agent's file implies the
    // socket that agent served); typed and validated like the file's own keys.
    void setDerived(const std::string& key, const std::string& value);

    const std::string& sourceName() const { return sourceName_; }
    // Information on a key ("section.key") or a section ("section"); nullptr when absent.
    const KeyInfo* info(const std::string& key) const;
    // "FILE:LINE" for a key or section written in the file, "command line (-Dkey)" for an
    // override, "" when unknown.
    std::string locate(const std::string& key) const;
    // Top-level sections, in the order of their lines.
    std::vector<std::string> sections() const;
    // Keys directly under a section (tables nested in it included, by their name).
    std::vector<std::string> keysOf(const std::string& section) const;

protected:
    ~TomlConfiguration() override = default;

private:
    explicit TomlConfiguration(std::string sourceName) : sourceName_(std::move(sourceName)) {}
    void load(const std::string& text);

    std::string sourceName_;
    std::map<std::string, KeyInfo> info_;
};

} // namespace agent
