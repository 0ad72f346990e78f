// Loads module .so files with Poco::ClassLoader after checking that each one is an agent module
// built for this agent's ABI. A refused file never gets past the check, so it cannot crash us.
#pragma once

#include <agent/Module.h>

#include <Poco/ClassLoader.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace agent {

// One line naming the file and the reason, e.g.
// "/x/sink-foo.so: built for module ABI 2, this agent has ABI 1".
class ModuleLoadError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct LoadedModule {
    std::string name;
    std::string path;
    ModuleDescription description; // describe()'s answer, checked against the module's type
    ModulePtr instance;

    bool has(Role role) const { return hasRole(description.roles, role); }
};

// "source, server": the roles in a fixed order, for logs and /me/status; "none" for no role.
std::vector<std::string> roleNames(Roles roles);
std::string roleList(Roles roles);

class ModuleLoader {
public:
    explicit ModuleLoader(std::string directory) : directory_(std::move(directory)) {}
    ~ModuleLoader();
    ModuleLoader(const ModuleLoader&) = delete;
    ModuleLoader& operator=(const ModuleLoader&) = delete;

    const std::string& directory() const { return directory_; }
    std::string pathOf(const std::string& name) const { return directory_ + "/" + name + ".so"; }

    // Loads <directory>/<name>.so, creates its module and reads its describe(). Throws
    // ModuleLoadError, also when the description does not fit the module (a Source role without
    // deriving from Source, a route not starting with '/', workers outside 1..16).
    // Every instance must be destroyed before the loader (which may unload the libraries).
    LoadedModule load(const std::string& name);

    // Pins the library of a loaded module for the life of the process: a thread the core had to
    // leave running in that module's code must never find it unmapped.
    void keepLoaded(const std::string& name);

    // The checks alone, for any file: ABI symbol, ABI number, undefined symbols.
    static void checkLibrary(const std::string& path);
    // Whether describe()'s answer fits the module; throws ModuleLoadError naming `path`.
    static void checkDescription(const std::string& path, const Module& module, const ModuleDescription& description);

private:
    std::string directory_;
    Poco::ClassLoader<Module> classLoader_;
    std::map<std::string, std::string> loadedNames_; // module name -> file
};

} // namespace agent
