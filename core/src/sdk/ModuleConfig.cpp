// Typed, schema-backed access to a module's config section, and config error formatting.
#include <agent/Module.h>
#include <agent/ModuleConfig.h>

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/NumberParser.h>
#include <Poco/Path.h>
#include <Poco/String.h>

#include <sstream>

namespace agent {
namespace {

std::string joinLines(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) {
        if (!text.empty()) text.push_back('\n');
        text += line;
    }
    return text;
}

} // namespace

const char* toString(ConfigType type) {
    switch (type) {
    case ConfigType::String: return "a string";
    case ConfigType::Integer: return "an integer";
    case ConfigType::Float: return "a number";
    case ConfigType::Boolean: return "a boolean";
    case ConfigType::StringList: return "a list of strings";
    }
    return "?";
}

const char* toString(WriteOutcome outcome) {
    switch (outcome) {
    case WriteOutcome::Done: return "done";
    case WriteOutcome::Retry: return "retry";
    case WriteOutcome::Drop: return "drop";
    }
    return "?";
}

ConfigError::ConfigError(const std::vector<std::string>& lines)
    : std::runtime_error(joinLines(lines)), lines_(lines) {}

ModuleConfig::ModuleConfig(std::string section, const ConfigSchema& schema,
                           Poco::AutoPtr<Configuration> root, Locator locate, std::string baseDir)
    : section_(std::move(section)), schema_(schema), root_(std::move(root)), locate_(std::move(locate)),
      baseDir_(std::move(baseDir)) {}

const ConfigKey& ModuleConfig::keyOf(const std::string& key) const {
    for (const ConfigKey& k : schema_) {
        if (k.name == key) return k;
    }
    throw Poco::NotFoundException("[" + section_ + "] has no key '" + key + "' in its schema");
}

bool ModuleConfig::has(const std::string& key) const { return root_->hasProperty(section_ + "." + key); }

std::string ModuleConfig::raw(const std::string& key, bool& found) const {
    const ConfigKey& k = keyOf(key);
    found = true;
    const std::string full = section_ + "." + key;
    if (root_->hasProperty(full)) return root_->getRawString(full);
    if (!k.inheritFrom.empty() && root_->hasProperty(k.inheritFrom)) return root_->getRawString(k.inheritFrom);
    if (!k.defaultValue.empty() || k.type == ConfigType::String) return k.defaultValue;
    found = false;
    return {};
}

std::string ModuleConfig::getString(const std::string& key) const {
    bool found = false;
    return raw(key, found);
}

std::int64_t ModuleConfig::getInt(const std::string& key) const {
    bool found = false;
    const std::string value = raw(key, found);
    if (!found) throw Poco::NotFoundException("[" + section_ + "] " + key + " has no value and no default");
    return Poco::NumberParser::parse64(Poco::trim(value));
}

double ModuleConfig::getDouble(const std::string& key) const {
    bool found = false;
    const std::string value = raw(key, found);
    if (!found) throw Poco::NotFoundException("[" + section_ + "] " + key + " has no value and no default");
    return Poco::NumberParser::parseFloat(Poco::trim(value));
}

bool ModuleConfig::getBool(const std::string& key) const {
    bool found = false;
    const std::string value = raw(key, found);
    if (!found) throw Poco::NotFoundException("[" + section_ + "] " + key + " has no value and no default");
    return Poco::NumberParser::parseBool(Poco::trim(value));
}

std::vector<std::string> ModuleConfig::getStringList(const std::string& key) const {
    bool found = false;
    const std::string value = raw(key, found);
    if (!found) return {};
    return parseStringList(value);
}

std::string ModuleConfig::getPath(const std::string& key) const {
    const std::string value = getString(key);
    if (value.empty()) return value;
    Poco::Path path(value);
    if (path.isAbsolute()) return path.toString();
    return baseDir_.empty() ? path.absolute().toString() : path.absolute(Poco::Path::forDirectory(baseDir_)).toString();
}

std::string ModuleConfig::where(const std::string& key) const {
    if (!locate_) return "[" + section_ + "]";
    std::string location = locate_(section_ + "." + key);
    if (location.empty()) {
        // An inherited value was written under its own key: point there.
        for (const ConfigKey& k : schema_) {
            if (k.name == key && !k.inheritFrom.empty() && root_->hasProperty(k.inheritFrom)) location = locate_(k.inheritFrom);
        }
    }
    return location.empty() ? "[" + section_ + "]" : location;
}

void ConfigErrors::add(const ModuleConfig& config, const std::string& key, const std::string& reason) {
    lines_.push_back(config.where(key) + ": [" + config.section() + "] " + key + ": " + reason);
}

void ConfigErrors::throwIfAny() const {
    if (!lines_.empty()) throw ConfigError(lines_);
}

std::vector<std::string> parseStringList(const std::string& raw) {
    const std::string text = Poco::trim(raw);
    std::vector<std::string> items;
    if (text.empty()) return items;
    if (text.front() == '[') {
        Poco::JSON::Parser parser;
        Poco::JSON::Array::Ptr array = parser.parse(text).extract<Poco::JSON::Array::Ptr>();
        for (std::size_t i = 0; i < array->size(); ++i) items.push_back(array->get(i).convert<std::string>());
        return items;
    }
    std::istringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ',')) {
        item = Poco::trim(item);
        if (!item.empty()) items.push_back(item);
    }
    return items;
}

std::string formatStringList(const std::vector<std::string>& items) {
    Poco::JSON::Array array;
    for (const std::string& item : items) array.add(item);
    std::ostringstream out;
    array.stringify(out);
    return out.str();
}

} // namespace agent
