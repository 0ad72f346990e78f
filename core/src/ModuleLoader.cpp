// Module loading in two steps. First a dlopen(RTLD_NOW) of our own: it resolves every symbol up
// front (Poco loads lazily, which would turn an unresolved symbol into a crash at first call)
// and lets us read the ABI number before any code of the manifest runs. Then Poco's ClassLoader
// reads the manifest and creates the module.
#include "ModuleLoader.h"

#include <agent/Abi.h>

#include <Poco/Exception.h>
#include <Poco/File.h>

#include <dlfcn.h>

namespace agent {
namespace {

class DlHandle {
public:
    explicit DlHandle(void* handle) : handle_(handle) {}
    ~DlHandle() {
        if (handle_ != nullptr) dlclose(handle_);
    }
    DlHandle(const DlHandle&) = delete;
    DlHandle& operator=(const DlHandle&) = delete;
    void* get() const { return handle_; }

private:
    void* handle_;
};

std::string describeDlopenError(const std::string& path, std::string error) {
    // dlerror() repeats the path; keep only the reason after it.
    const auto at = error.find(path + ": ");
    if (at != std::string::npos) error.erase(at, path.size() + 2);
    if (error.find("undefined symbol") != std::string::npos) return path + ": unresolved symbol (" + error + ")";
    if (error.find("invalid ELF header") != std::string::npos || error.find("file too short") != std::string::npos ||
        error.find("not a dynamic") != std::string::npos)
        return path + ": not a module (not a shared library: " + error + ")";
    return path + ": cannot load (" + error + ")";
}

} // namespace

std::vector<std::string> roleNames(Roles roles) {
    std::vector<std::string> names;
    if (hasRole(roles, Role::Source)) names.emplace_back("source");
    if (hasRole(roles, Role::Sink)) names.emplace_back("sink");
    if (hasRole(roles, Role::Server)) names.emplace_back("server");
    if (hasRole(roles, Role::Reporter)) names.emplace_back("reporter");
    return names;
}

std::string roleList(Roles roles) {
    std::string text;
    for (const std::string& name : roleNames(roles)) text += (text.empty() ? "" : ", ") + name;
    return text.empty() ? "none" : text;
}

ModuleLoader::~ModuleLoader() = default;

void ModuleLoader::keepLoaded(const std::string& name) {
    auto it = loadedNames_.find(name);
    if (it == loadedNames_.end()) return;
    // One more reference, never released: whatever unloads the library later only drops ours.
    (void)dlopen(it->second.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD | RTLD_NODELETE);
}

// Role::Source iff the object is a Source, Role::Sink iff a Sink: the core calls collect() and
// write() on those roles, so a description that disagrees with the type is refused at load.
void ModuleLoader::checkDescription(const std::string& path, const Module& module, const ModuleDescription& description) {
    const bool isSource = dynamic_cast<const Source*>(&module) != nullptr;
    const bool isSink = dynamic_cast<const Sink*>(&module) != nullptr;
    if (hasRole(description.roles, Role::Source) != isSource)
        throw ModuleLoadError(path + ": describe() " + (isSource ? "omits the source role of a Source" : "claims the source role, but the module is no Source"));
    if (hasRole(description.roles, Role::Sink) != isSink)
        throw ModuleLoadError(path + ": describe() " + (isSink ? "omits the sink role of a Sink" : "claims the sink role, but the module is no Sink"));
    constexpr Roles kKnown = Role::Source | Role::Sink | Role::Server | Role::Reporter;
    if ((description.roles & ~kKnown) != 0)
        throw ModuleLoadError(path + ": describe() claims an unknown role (" + std::to_string(description.roles) + ")");
    if (description.workers < 1 || description.workers > 16)
        throw ModuleLoadError(path + ": describe() asks for " + std::to_string(description.workers) +
                              " workers (1 to 16)");
    for (const std::string& route : description.routes) {
        if (route.empty() || route.front() != '/')
            throw ModuleLoadError(path + ": describe() declares route \"" + route + "\", which does not start with '/'");
    }
}

void ModuleLoader::checkLibrary(const std::string& path) {
    if (!Poco::File(path).exists()) throw ModuleLoadError(path + ": not found");
    dlerror();
    DlHandle handle(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL));
    if (handle.get() == nullptr) {
        const char* error = dlerror();
        throw ModuleLoadError(describeDlopenError(path, error != nullptr ? error : "unknown dlopen error"));
    }
    using AbiFunction = int (*)();
    auto abi = reinterpret_cast<AbiFunction>(dlsym(handle.get(), AGENT_MODULE_ABI_SYMBOL));
    if (abi == nullptr) {
        if (dlsym(handle.get(), "pocoBuildManifest") != nullptr)
            throw ModuleLoadError(path + ": missing ABI symbol " AGENT_MODULE_ABI_SYMBOL " (the module lacks AGENT_MODULE_ABI())");
        throw ModuleLoadError(path + ": not a module (no " AGENT_MODULE_ABI_SYMBOL " symbol and no Poco manifest)");
    }
    const int version = abi();
    if (version != AGENT_SDK_ABI)
        throw ModuleLoadError(path + ": built for module ABI " + std::to_string(version) + ", this agent has ABI " +
                              std::to_string(AGENT_SDK_ABI));
}

LoadedModule ModuleLoader::load(const std::string& name) {
    const std::string path = pathOf(name);
    if (!isValidName(name, 128)) throw ModuleLoadError(path + ": invalid module name \"" + name + "\"");
    if (auto it = loadedNames_.find(name); it != loadedNames_.end())
        throw ModuleLoadError(path + ": duplicate module name \"" + name + "\" (already loaded from " + it->second + ")");
    checkLibrary(path);

    try {
        classLoader_.loadLibrary(path);
    } catch (const Poco::Exception& error) {
        throw ModuleLoadError(path + ": not a module (" + error.displayText() + ")");
    }
    const auto* manifest = classLoader_.findManifest(path);
    std::string exported;
    bool hasName = false;
    for (auto it = manifest->begin(); it != manifest->end(); ++it) {
        const std::string className = it->name();
        exported += (exported.empty() ? "" : ", ") + className;
        if (className == name) hasName = true;
        auto other = loadedNames_.find(className);
        if (other != loadedNames_.end()) {
            classLoader_.unloadLibrary(path);
            throw ModuleLoadError(path + ": duplicate module name \"" + className + "\" (already loaded from " +
                                  other->second + ")");
        }
    }
    if (!hasName) {
        classLoader_.unloadLibrary(path);
        throw ModuleLoadError(path + ": its manifest exports " + (exported.empty() ? "nothing" : "\"" + exported + "\"") +
                              ", not \"" + name + "\" (a module exports itself under its file name)");
    }

    LoadedModule loaded;
    loaded.name = name;
    loaded.path = path;
    loaded.instance.reset(classLoader_.create(name));
    try {
        try {
            loaded.description = loaded.instance->describe();
        } catch (const std::exception& error) {
            throw ModuleLoadError(path + ": describe() failed: " + error.what());
        }
        checkDescription(path, *loaded.instance, loaded.description);
    } catch (const ModuleLoadError&) {
        loaded.instance.reset(); // its code goes with the library
        classLoader_.unloadLibrary(path);
        throw;
    }
    loadedNames_[name] = path;
    return loaded;
}

} // namespace agent
