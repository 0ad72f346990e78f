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

ModuleLoader::~ModuleLoader() = default;

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
    if (dynamic_cast<Source*>(loaded.instance.get()) != nullptr) loaded.kind = ModuleKind::Source;
    else if (dynamic_cast<Sink*>(loaded.instance.get()) != nullptr) loaded.kind = ModuleKind::Sink;
    loadedNames_[name] = path;
    return loaded;
}

} // namespace agent
