// ModuleLoader: each kind of bad .so is refused with one line naming the file and the reason;
// a good module loads with the roles it describes, and a description that does not fit the
// module's type is refused naming the file.
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
    EXPECT_TRUE(module.has(agent::Role::Source));
    EXPECT_FALSE(module.has(agent::Role::Sink));
    EXPECT_EQ(module.description.workers, 1u);
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

namespace {

class PlainModule : public agent::Module {
public:
    explicit PlainModule(agent::ModuleDescription description) : description_(std::move(description)) {}
    const agent::ConfigSchema& configSchema() const override { return schema_; }
    agent::ModuleDescription describe() const override { return description_; }
    void configure(const agent::ModuleConfig&) override {}

private:
    agent::ConfigSchema schema_;
    agent::ModuleDescription description_;
};

class PlainSink : public agent::Sink {
public:
    const agent::ConfigSchema& configSchema() const override { return schema_; }
    void configure(const agent::ModuleConfig&) override {}
    agent::WriteResult write(const agent::Batch&) override { return agent::WriteOutcome::Done; }

private:
    agent::ConfigSchema schema_;
};

std::string descriptionRefusal(const agent::Module& module, const agent::ModuleDescription& description) {
    try {
        ModuleLoader::checkDescription("/m/x.so", module, description);
    } catch (const ModuleLoadError& e) {
        return e.what();
    }
    return "accepted";
}

} // namespace

TEST(ModuleLoader, DescriptionMustFitTheModulesType) {
    const PlainModule plain({});
    const PlainSink sink;
    EXPECT_EQ(descriptionRefusal(plain, {agent::Role::Server | agent::Role::Reporter, {"/x"}, 16}), "accepted");
    EXPECT_EQ(descriptionRefusal(sink, sink.describe()), "accepted");
    EXPECT_EQ(descriptionRefusal(plain, {static_cast<agent::Roles>(agent::Role::Source), {}, 1}),
              "/m/x.so: describe() claims the source role, but the module is no Source");
    EXPECT_EQ(descriptionRefusal(sink, {static_cast<agent::Roles>(agent::Role::Server), {}, 1}),
              "/m/x.so: describe() omits the sink role of a Sink");
    EXPECT_EQ(descriptionRefusal(plain, {0, {}, 0}), "/m/x.so: describe() asks for 0 workers (1 to 16)");
    EXPECT_EQ(descriptionRefusal(plain, {0, {}, 17}), "/m/x.so: describe() asks for 17 workers (1 to 16)");
    EXPECT_EQ(descriptionRefusal(plain, {0, {"plugins"}, 1}),
              "/m/x.so: describe() declares route \"plugins\", which does not start with '/'");
}

TEST(ModuleLoader, RoleListNamesEveryRoleInAFixedOrder) {
    EXPECT_EQ(agent::roleList(agent::Role::Server | agent::Role::Source), "source, server");
    EXPECT_EQ(agent::roleList(0), "none");
}
