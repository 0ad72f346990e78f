// ModuleLoader: each kind of bad .so is refused with one line naming the file and the reason;
// a good module loads and is recognised by its kind.
#include "ModuleLoader.h"

#include <agent/Abi.h>

#include <gtest/gtest.h>

using agent::ModuleLoader;
using agent::ModuleLoadError;

namespace {

// The refusal line for loading `name` from the test-module directory.
std::string refusal(ModuleLoader& loader, const std::string& name) {
    try {
        loader.load(name);
    } catch (const ModuleLoadError& e) {
        return e.what();
    }
    return "loaded";
}

std::string fileOf(const std::string& name) { return std::string(AGENT_TEST_MODULE_DIR) + "/" + name + ".so"; }

} // namespace

TEST(ModuleLoader, GoodModuleLoadsAsASource) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    agent::LoadedModule module = loader.load("source-good");
    EXPECT_EQ(module.kind, agent::ModuleKind::Source);
    EXPECT_EQ(module.path, fileOf("source-good"));
    ASSERT_NE(module.instance, nullptr);
    EXPECT_EQ(module.instance->configSchema().size(), 2u);
}

TEST(ModuleLoader, MissingFileIsNotFound) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    EXPECT_EQ(refusal(loader, "source-absent"), fileOf("source-absent") + ": not found");
}

TEST(ModuleLoader, OtherAbiNumberIsRefusedBeforeTheManifestIsUsed) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    EXPECT_EQ(refusal(loader, "source-wrongabi"),
              fileOf("source-wrongabi") + ": built for module ABI " + std::to_string(AGENT_SDK_ABI + 1000) +
                  ", this agent has ABI " + std::to_string(AGENT_SDK_ABI));
}

TEST(ModuleLoader, ManifestWithoutAbiSymbolIsRefused) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    EXPECT_EQ(refusal(loader, "source-noabi"),
              fileOf("source-noabi") + ": missing ABI symbol agent_module_abi (the module lacks AGENT_MODULE_ABI())");
}

TEST(ModuleLoader, OrdinarySharedLibraryIsNotAModule) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    EXPECT_EQ(refusal(loader, "source-notmodule"),
              fileOf("source-notmodule") + ": not a module (no agent_module_abi symbol and no Poco manifest)");
}

TEST(ModuleLoader, FileThatIsNotALibraryIsNotAModule) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    const std::string line = refusal(loader, "source-garbage");
    EXPECT_EQ(line.rfind(fileOf("source-garbage") + ": not a module (not a shared library: ", 0), 0u) << line;
}

TEST(ModuleLoader, UnresolvedSymbolIsRefusedAtLoadNotAtFirstCall) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    const std::string line = refusal(loader, "source-unresolved");
    EXPECT_EQ(line.rfind(fileOf("source-unresolved") + ": unresolved symbol (", 0), 0u) << line;
    EXPECT_NE(line.find("agent_function_that_does_not_exist"), std::string::npos) << line;
}

TEST(ModuleLoader, ModuleExportingAnotherNameIsRefused) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    EXPECT_EQ(refusal(loader, "source-misnamed"),
              fileOf("source-misnamed") + ": its manifest exports \"source-good\", not \"source-misnamed\" "
                                          "(a module exports itself under its file name)");
}

TEST(ModuleLoader, DuplicateModuleNameIsRefused) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    agent::LoadedModule good = loader.load("source-good");
    EXPECT_EQ(refusal(loader, "source-good"),
              fileOf("source-good") + ": duplicate module name \"source-good\" (already loaded from " +
                  fileOf("source-good") + ")");
    EXPECT_EQ(refusal(loader, "source-misnamed"),
              fileOf("source-misnamed") + ": duplicate module name \"source-good\" (already loaded from " +
                  fileOf("source-good") + ")");
}

TEST(ModuleLoader, NamesThatCouldEscapeTheDirectoryAreRefused) {
    ModuleLoader loader(AGENT_TEST_MODULE_DIR);
    const std::string line = refusal(loader, "../source-good");
    EXPECT_NE(line.find("invalid module name"), std::string::npos) << line;
}
