// Plugins an operator disabled, per (namespace, project), kept in a file in the module's state
// dir so a restart keeps them, and lapsing by themselves after a time to live (24 h by default).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace agent::exec {

class DisabledPlugins {
public:
    DisabledPlugins(std::string file, std::chrono::seconds ttl);

    // Reads the file (absent = nothing disabled); returns "" or what was wrong with it.
    std::string load();
    bool isDisabled(const std::string& ns, const std::string& project, std::int64_t now);
    // Both save at once (temporary file + rename); they return "" or why saving failed.
    std::string disable(const std::string& ns, const std::string& project, std::int64_t now);
    std::string enable(const std::string& ns, const std::string& project);
    // When a disable lapses; 0 when the plugin is enabled.
    std::int64_t disabledUntil(const std::string& ns, const std::string& project, std::int64_t now);

private:
    static std::string keyOf(const std::string& ns, const std::string& project) { return ns + "/" + project; }
    std::string saveLocked() const;
    void expireLocked(std::int64_t now);

    const std::string file_;
    const std::chrono::seconds ttl_;
    std::mutex mutex_; // guards until_
    std::map<std::string, std::int64_t> until_;
};

} // namespace agent::exec
