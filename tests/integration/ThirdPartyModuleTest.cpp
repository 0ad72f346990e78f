// A third party's view of the SDK: install the agent's SDK into a prefix, build
// examples/source-example out of tree against that prefix alone, drop the .so into a module
// directory and run the built agent's `check` and `once` on it. The install and the build run
// once for the whole suite (they take tens of seconds); each test writes its own config.
#include "TestSupport.h"

#include <agent/Abi.h>

#include <gtest/gtest.h>

#include <Poco/File.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <vector>

namespace agent::test {
namespace {

// The SDK library is versioned by the module ABI: a module needs the one the agent has loaded.
const std::string kSdkSoname = "libagent_sdk.so." + std::to_string(AGENT_SDK_ABI);


const std::string kCmake = AGENT_CMAKE_COMMAND;
const std::string kAgent = AGENT_BINARY;

std::string describe(const std::vector<std::string>& argv, const CommandResult& result) {
    std::string command;
    for (const std::string& arg : argv) command += (command.empty() ? "" : " ") + arg;
    return command + "\nexit " + std::to_string(result.exitCode) + (result.timedOut ? " (timed out)" : "") +
           "\n--- stdout\n" + result.out + "\n--- stderr\n" + result.err;
}

// The 1-based number of the first line of `text` that starts with `start`; 0 when none does.
int lineNumberOf(const std::string& text, const std::string& start) {
    const std::vector<std::string> all = lines(text);
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (all[i].rfind(start, 0) == 0) return static_cast<int>(i) + 1;
    }
    return 0;
}

bool hasLineStartingWith(const std::string& text, const std::string& start) {
    return lineNumberOf(text, start) != 0;
}

} // namespace

class ThirdPartyModuleTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        suiteDir_ = std::make_unique<TempDir>();
        const TempDir& dir = *suiteDir_;
        const std::string prefix = dir / "prefix";
        const std::string build = dir / "build";
        const std::vector<std::vector<std::string>> steps = {
            {kCmake, "--install", AGENT_BUILD_DIR, "--prefix", prefix, "--component", "dev"},
            {kCmake, "--install", AGENT_BUILD_DIR, "--prefix", prefix, "--component", "runtime"},
            {kCmake, "-S", std::string(AGENT_SOURCE_DIR) + "/examples/source-example", "-B", build,
             "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Release"},
            {kCmake, "--build", build},
        };
        for (const std::vector<std::string>& step : steps) {
            const CommandResult result = runCommand(step, dir.path(), std::chrono::seconds(600));
            if (result.exitCode != 0) {
                setUpProblem_ = describe(step, result);
                return;
            }
        }
        builtModule_ = build + "/source-example.so";
        if (!fileExists(builtModule_)) {
            setUpProblem_ = "the build succeeded but left no " + builtModule_;
            return;
        }
        Poco::File(dir / "modules").createDirectories();
        Poco::File(builtModule_).copyTo(dir / "modules");
        Poco::File(std::string(AGENT_MODULE_DIR) + "/sink-file.so").copyTo(dir / "modules");
    }

    static void TearDownTestSuite() { suiteDir_.reset(); }

    void SetUp() override {
        if (!setUpProblem_.empty()) GTEST_FAIL() << "building the example failed:\n" << setUpProblem_;
    }

    static const TempDir& suiteDir() { return *suiteDir_; }

    // A config that loads the example and sink-file from the suite's module dir, keeps every
    // path the agent writes inside this test's own directory, and ends with `exampleSection`.
    std::string writeConfig(const std::string& exampleSection) {
        const std::string text = "[agent]\n"
                                 "statedir = \"" + work_ / "state" + "\"\n"
                                 "pidfile = \"" + work_ / "agent.pid" + "\"\n"
                                 "pluginsdir = \"" + work_ / "plugins" + "\"\n"
                                 "\n"
                                 "[modules]\n"
                                 "dir = \"" + suiteDir() / "modules" + "\"\n"
                                 "load = [\"source-example\", \"sink-file\"]\n"
                                 "\n"
                                 "[log]\n"
                                 "logdir = \"" + work_ / "log" + "\"\n"
                                 "\n"
                                 "[source-example]\n" +
                                 exampleSection;
        writeFile(work_ / "agent.toml", text);
        configText_ = text;
        return work_ / "agent.toml";
    }

    TempDir work_;
    std::string configText_;

    static std::unique_ptr<TempDir> suiteDir_;
    static std::string setUpProblem_;
    static std::string builtModule_;
};

std::unique_ptr<TempDir> ThirdPartyModuleTest::suiteDir_;
std::string ThirdPartyModuleTest::setUpProblem_;
std::string ThirdPartyModuleTest::builtModule_;

TEST_F(ThirdPartyModuleTest, ExampleBuildsOutOfTreeAgainstTheInstalledSdkAlone) {
    const std::string prefix = suiteDir() / "prefix";
    EXPECT_TRUE(fileExists(prefix + "/include/agent/Module.h"));
    EXPECT_TRUE(fileExists(prefix + "/lib/cmake/AgentSDK/AgentSDKConfig.cmake"));
    EXPECT_TRUE(fileExists(prefix + "/lib/cmake/AgentSDK/AgentModule.cmake"));
    EXPECT_TRUE(fileExists(builtModule_));
    // The package came from the prefix, not from the agent's source or build tree.
    const std::string cache = readFile(suiteDir() / "build/CMakeCache.txt");
    EXPECT_TRUE(contains(cache, "AgentSDK_DIR:PATH=" + prefix + "/lib/cmake/AgentSDK\n")) << cache;
}

TEST_F(ThirdPartyModuleTest, ExampleNeedsTheSdkUnderTheSonameTheAgentAlreadyLoads) {
    // The loader dlopens the module into the agent, where the SDK is already mapped under this
    // soname; the dynamic linker then reuses it instead of loading the installed copy.
    const CommandResult agent = runCommand({"/usr/bin/ldd", kAgent});
    const CommandResult example = runCommand({"/usr/bin/ldd", builtModule_});
    ASSERT_EQ(agent.exitCode, 0) << agent.err;
    ASSERT_EQ(example.exitCode, 0) << example.err;
    EXPECT_TRUE(contains(agent.out, kSdkSoname + " => /")) << agent.out;
    EXPECT_TRUE(contains(example.out, kSdkSoname + " => /")) << example.out;
    EXPECT_FALSE(contains(example.out, "not found")) << example.out;
}

TEST_F(ThirdPartyModuleTest, AgentCheckLoadsTheExampleModule) {
    const std::string config = writeConfig("value = 1234\n");

    const CommandResult result = runCommand({kAgent, "check", "-f", config});

    EXPECT_EQ(result.exitCode, 0) << result.out << result.err;
    EXPECT_TRUE(hasLineStartingWith(result.out, "module source-example: ok")) << result.out;
    EXPECT_TRUE(hasLineStartingWith(result.out, "module sink-file: ok")) << result.out;
}

TEST_F(ThirdPartyModuleTest, AgentOncePrintsTheExamplePointWithTheConfiguredValueAndTheHostTag) {
    const std::string config = writeConfig("value = 1234\nlabel = \"from-test\"\n");

    const CommandResult result = runCommand({kAgent, "once", "-f", config});

    ASSERT_EQ(result.exitCode, 0) << result.out << result.err;
    const std::regex point(R"(example\.value,host=[^, ]+,label=from-test value=1234i [0-9]{10})");
    bool found = false;
    for (const std::string& line : lines(result.out)) found = found || std::regex_match(line, point);
    EXPECT_TRUE(found) << result.out;
}

TEST_F(ThirdPartyModuleTest, AgentCheckReportsTheExamplesOwnRangeErrorWithFileAndLine) {
    const std::string config = writeConfig("value = -1\n");
    const int line = lineNumberOf(configText_, "value = -1");

    const CommandResult result = runCommand({kAgent, "check", "-f", config});

    EXPECT_EQ(result.exitCode, 1) << result.out << result.err;
    EXPECT_TRUE(hasLineStartingWith(result.out, "module source-example: error: " + config + ":" +
                                                    std::to_string(line) +
                                                    ": [source-example] value: must be 0 or more, got -1"))
        << result.out;
}

TEST_F(ThirdPartyModuleTest, AgentCheckReportsAWronglyTypedExampleKeyWithFileAndLine) {
    const std::string config = writeConfig("interval = 10\nvalue = \"many\"\n");
    const int line = lineNumberOf(configText_, "value = \"many\"");

    const CommandResult result = runCommand({kAgent, "check", "-f", config});

    EXPECT_EQ(result.exitCode, 1) << result.out << result.err;
    EXPECT_TRUE(hasLineStartingWith(result.out, "module source-example: error: " + config + ":" +
                                                    std::to_string(line) +
                                                    ": [source-example] value: must be an integer"))
        << result.out;
}

} // namespace agent::test
