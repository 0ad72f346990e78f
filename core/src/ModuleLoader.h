// Loads module .so files with Poco::ClassLoader after checking that each one is an agent module
// built for this agent's ABI. A refused file never gets past the check, so it cannot crash us.
#pragma once

#include <agent/Module.h>

#include <Poco/ClassLoader.h>

#include <map>
#include <stdexcept>
#include <string>

namespace agent {

// One line naming the file and the reason, e.g.
// "/x/sink-foo.so: built for module ABI 2, this agent has ABI 1".
class ModuleLoadError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class ModuleKind { Source, Sink, Other };

struct LoadedModule {
    std::string name;
    std::string path;
    ModuleKind kind = ModuleKind::Other;
    ModulePtr instance;
};

class ModuleLoader {
public:
    explicit ModuleLoader(std::string directory) : directory_(std::move(directory)) {}
    ~ModuleLoader();
    ModuleLoader(const ModuleLoader&) = delete;
    ModuleLoader& operator=(const ModuleLoader&) = delete;

    const std::string& directory() const { return directory_; }
    std::string pathOf(const std::string& name) const { return directory_ + "/" + name + ".so"; }

    // Loads <directory>/<name>.so and creates its module. Throws ModuleLoadError.
    // Every instance must be destroyed before the loader (which unloads the libraries).
    LoadedModule load(const std::string& name);

    // The checks alone, for any file: ABI symbol, ABI number, undefined symbols.
    static void checkLibrary(const std::string& path);

private:
    std::string directory_;
    Poco::ClassLoader<Module> classLoader_;
    std::map<std::string, std::string> loadedNames_; // module name -> file
};

} // namespace agent
