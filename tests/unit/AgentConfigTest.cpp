// TOML configuration: syntax errors, unknown keys and wrong types name the file and line; the Go
// agent's file loads unchanged and derives its modules; -D overrides are typed like the file.
#include "AgentConfig.h"
#include "TomlConfiguration.h"

#include <gtest/gtest.h>

#include <fstream>

#include <unistd.h>

using agent::AgentConfig;
using agent::ConfigError;
using agent::ConfigFileError;
using agent::TomlConfiguration;

namespace {

AgentConfig fromText(const std::string& text) {
    return AgentConfig::fromToml(TomlConfiguration::fromString(text, "test.toml"), {"/modules", "/base"});
}

// Runs `load` and returns the error lines it throws (empty when it does not throw).
std::string errorsOf(const std::string& text) {
    try {
        fromText(text);
    } catch (const ConfigFileError& e) {
        return e.what();
    } catch (const ConfigError& e) {
        return e.what();
    }
    return {};
}

const char* kSeed = R"(
[agent]
listen = "127.0.0.1:1232"          # HTTP API address; also "unix:/path.sock"
ifaceprefix = ["eth", "en"]        # network interfaces to watch
registryaddr = ""
pluginsdir = "/usr/local/agent-plugins"
pluginsuser = "nobody"
git = "https://git.example.com/%s.git"
[output]
name = "nsq"
servers = ["127.0.0.1:4150"]
buffersize = 1000
[log]
logdir = "/tmp/agent/log"
loglevel = "DEBUG"
logrotatenum = 5
logrotatesize = 1887436800
)";

} // namespace

TEST(AgentConfig, GoAgentFileLoadsUnchangedAndDerivesItsModules) {
    const AgentConfig config = fromText(kSeed);
    const agent::AgentSettings& s = config.settings();
    EXPECT_TRUE(s.modulesDerived);
    // No api-http.so in /modules: the API is left out, and said so.
    EXPECT_EQ(s.modules, (std::vector<std::string>{"source-netif", "source-host", "sink-nsq"}));
    ASSERT_EQ(s.skippedModules.size(), 1u);
    EXPECT_EQ(s.skippedModules[0], "api-http: not installed (/modules/api-http.so); derived from [agent] listen = "
                                   "\"127.0.0.1:1232\", so the HTTP API is off");
    EXPECT_EQ(s.ifacePrefixes, (std::vector<std::string>{"eth", "en"}));
    EXPECT_EQ(s.servers, (std::vector<std::string>{"127.0.0.1:4150"}));
    EXPECT_EQ(s.bufferSize, 1000);
    EXPECT_EQ(s.logLevel, "debug");
    EXPECT_EQ(s.logRotateSize, 1887436800);
    EXPECT_EQ(s.pluginsUser, "nobody");
    EXPECT_EQ(s.moduleDir, "/modules");
}

TEST(AgentConfig, RegistryAndModuleSectionsAddTheirModules) {
    const AgentConfig config = fromText(R"(
[agent]
registryaddr = "http://registry:8080"
listen = ""
[output]
names = ["influx", "file"]
[reporter-argus]
)");
    EXPECT_EQ(config.settings().modules,
              (std::vector<std::string>{"source-netif", "source-host", "source-exec", "source-probe", "sink-influx",
                                        "sink-file", "reporter-argus"}));
}

TEST(AgentConfig, ApiSectionMakesTheApiModuleRequired) {
    const AgentConfig config = fromText("[agent]\nlisten = \"127.0.0.1:1\"\n[api-http]\n");
    EXPECT_EQ(config.settings().modules, (std::vector<std::string>{"source-netif", "source-host", "api-http"}));
    EXPECT_TRUE(config.settings().skippedModules.empty());
}

TEST(AgentConfig, ExplicitLoadListIsUsedAsIs) {
    const AgentConfig config = fromText("[modules]\nload = [\"sink-file\", \"source-netif\"]\n");
    EXPECT_FALSE(config.settings().modulesDerived);
    EXPECT_EQ(config.settings().modules, (std::vector<std::string>{"sink-file", "source-netif"}));
}

TEST(AgentConfig, SyntaxErrorNamesFileLineAndColumn) {
    EXPECT_EQ(errorsOf("[agent]\nlisten = \"a\"\nifaceprefix = [\"eth\",\n\n[log]\n").rfind("test.toml:", 0), 0u);
    const std::string error = errorsOf("[agent]\nlisten = \"unterminated\n");
    EXPECT_NE(error.find("test.toml:2:"), std::string::npos) << error;
    EXPECT_NE(error.find("TOML syntax error"), std::string::npos) << error;
}

TEST(AgentConfig, UnknownKeyNamesFileLineSectionAndKey) {
    const std::string error = errorsOf("[agent]\nlisten = \"x\"\n\nlisen = \"y\"\n");
    EXPECT_NE(error.find("test.toml:4: [agent] lisen: unknown key"), std::string::npos) << error;
}

TEST(AgentConfig, EveryBadKeyIsReportedAtOnce) {
    const std::string error = errorsOf("[agent]\nbogus = 1\n[output]\nbuffersize = \"many\"\n[log]\nloglevel = \"LOUD\"\n");
    EXPECT_NE(error.find("test.toml:2: [agent] bogus: unknown key"), std::string::npos) << error;
    EXPECT_NE(error.find("test.toml:4: [output] buffersize: must be an integer"), std::string::npos) << error;
    // Type errors stop before the values are read; fix them and the next layer is reported.
    const std::string next = errorsOf("[output]\nbuffersize = 0\n[log]\nloglevel = \"LOUD\"\n");
    EXPECT_NE(next.find("test.toml:2: [output] buffersize: must be at least 1"), std::string::npos) << next;
    EXPECT_NE(next.find("test.toml:4: [log] loglevel: \"LOUD\" is not one of"), std::string::npos) << next;
}

TEST(AgentConfig, WrongTypesAreErrorsNotConversions) {
    EXPECT_NE(errorsOf("[agent]\nifaceprefix = \"eth\"\n").find("ifaceprefix: must be a list of strings"), std::string::npos);
    EXPECT_NE(errorsOf("[agent]\nlisten = 1232\n").find("listen: must be a string"), std::string::npos);
    EXPECT_NE(errorsOf("[agent]\nifaceprefix = [1, 2]\n").find("must be a list of strings"), std::string::npos);
}

TEST(AgentConfig, KeysOutsideSectionsAndDatesAreRefusedWithTheirLine) {
    EXPECT_NE(errorsOf("listen = \"x\"\n").find("test.toml:1: listen: every key belongs in a [section]"), std::string::npos);
    EXPECT_NE(errorsOf("[agent]\nhostname = 1979-05-27\n").find("test.toml:2:"), std::string::npos);
}

TEST(AgentConfig, PluginsNeverRunAsRoot) {
    EXPECT_NE(errorsOf("[agent]\npluginsuser = \"root\"\n").find("pluginsuser: plugins never run as root"), std::string::npos);
}

TEST(AgentConfig, StopTimeoutIsTenSecondsByDefaultAndBetweenOneAndThreeHundred) {
    EXPECT_DOUBLE_EQ(fromText("[agent]\n").settings().stopTimeoutSeconds, 10.0);
    EXPECT_DOUBLE_EQ(fromText("[agent]\nstop_timeout = 2.5\n").settings().stopTimeoutSeconds, 2.5);
    EXPECT_DOUBLE_EQ(fromText("[agent]\nstop_timeout = 300\n").settings().stopTimeoutSeconds, 300.0);
    for (const char* bad : {"0.5", "301", "-1"}) {
        const std::string error = errorsOf(std::string("[agent]\nlisten = \"x\"\nstop_timeout = ") + bad + "\n");
        EXPECT_NE(error.find("test.toml:3: [agent] stop_timeout: must be between 1 and 300 seconds"), std::string::npos)
            << bad << ": " << error;
    }
    EXPECT_NE(errorsOf("[agent]\nstop_timeout = \"soon\"\n").find("test.toml:2: [agent] stop_timeout: must be a number"),
              std::string::npos)
        << errorsOf("[agent]\nstop_timeout = \"soon\"\n");
}

TEST(AgentConfig, UnknownOutputNameIsAnError) {
    EXPECT_NE(errorsOf("[output]\nname = \"kafka\"\n").find("[output] name: \"kafka\" is not a known output"), std::string::npos);
}

TEST(AgentConfig, RelativePathsStartAtTheBaseDirectory) {
    const AgentConfig config = fromText("[agent]\nstatedir = \"var/state\"\n[log]\nlogdir = \"/abs/log\"\n");
    EXPECT_EQ(config.settings().stateDir, "/base/var/state");
    EXPECT_EQ(config.settings().pidFile, "/base/var/state/agent.pid");
    EXPECT_EQ(config.settings().logDir, "/abs/log");
}

TEST(AgentConfig, UnclaimedSectionsAreThoseOfModulesNotLoaded) {
    const AgentConfig config = fromText("[modules]\nload = [\"sink-file\"]\n[sink-file]\n[sink-nsq]\n[agent]\n");
    EXPECT_EQ(config.unclaimedSections(config.settings().modules), (std::vector<std::string>{"sink-nsq"}));
}

TEST(AgentConfig, CommandLineOverridesWinAndAreTypedByTheSchema) {
    const std::string path = testing::TempDir() + "/override.toml";
    std::ofstream(path) << "[output]\nbuffersize = 10\n";
    const AgentConfig config = AgentConfig::load(path, {"output.buffersize=77", "agent.ifaceprefix=lo,eth"}, {"/m", "/b"});
    EXPECT_EQ(config.settings().bufferSize, 77);
    EXPECT_EQ(config.settings().ifacePrefixes, (std::vector<std::string>{"lo", "eth"}));
    try {
        AgentConfig::load(path, {"output.buffersize=lots"}, {"/m", "/b"});
        FAIL() << "a non-integer override must be refused";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("command line (-Doutput.buffersize): [output] buffersize: must be an integer"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(AgentConfig::load(path, {"nodot=1"}, {"/m", "/b"}), ConfigError);
}

TEST(AgentConfig, MissingFileSaysSo) {
    try {
        AgentConfig::load("/nonexistent/agent.toml", {}, {"/m", "/b"});
        FAIL();
    } catch (const ConfigFileError& e) {
        EXPECT_EQ(std::string(e.what()), "/nonexistent/agent.toml: config file not found");
    }
}

TEST(AgentConfig, ModuleSectionsAreValidatedAgainstTheModuleSchema) {
    const AgentConfig config = fromText("[sink-x]\npath = 5\nextra = true\n");
    const agent::ConfigSchema schema = {{"path", agent::ConfigType::String, "", "where"}};
    agent::ConfigErrors errors;
    config.validateSection("sink-x", schema, errors);
    try {
        errors.throwIfAny();
        FAIL();
    } catch (const ConfigError& e) {
        ASSERT_EQ(e.lines().size(), 2u);
        EXPECT_EQ(e.lines()[0], "test.toml:3: [sink-x] extra: unknown key (valid keys: path)");
        EXPECT_EQ(e.lines()[1], "test.toml:2: [sink-x] path: must be a string");
    }
}

TEST(ModuleConfig, ValuesComeFromTheSectionThenTheInheritedKeyThenTheDefault) {
    const AgentConfig config = fromText("[output]\nservers = [\"a:1\", \"b:2\"]\n[sink-y]\ntopic = \"t\"\n");
    const agent::ConfigSchema schema = {
        {"topic", agent::ConfigType::String, "collect.{ns}", ""},
        {"format", agent::ConfigType::String, "json", ""},
        {"servers", agent::ConfigType::StringList, "[]", "", "output.servers"},
        {"size", agent::ConfigType::Integer, "5", ""},
    };
    const agent::ModuleConfig section = config.section("sink-y", schema);
    EXPECT_EQ(section.getString("topic"), "t");
    EXPECT_EQ(section.getString("format"), "json");
    EXPECT_EQ(section.getStringList("servers"), (std::vector<std::string>{"a:1", "b:2"}));
    EXPECT_EQ(section.getInt("size"), 5);
    EXPECT_TRUE(section.has("topic"));
    EXPECT_FALSE(section.has("format"));
    EXPECT_EQ(section.where("topic"), "test.toml:4");
    EXPECT_EQ(section.where("servers"), "test.toml:2"); // inherited: where [output] servers is
    EXPECT_EQ(section.where("format"), "[sink-y]");
}

// The Go agent also served its API on /var/run/monitor-agent.sock, where its clients post: a Go
// agent's file implies that socket for api-http, unless the file says otherwise; a file of this
// agent ([modules] load) implies nothing.
TEST(AgentConfig, GoAgentFileImpliesTheGoAgentsSocketUnlessItSetsOne) {
    const std::string withApi = std::string(kSeed) + "[api-http]\ntoken = \"t\"\n";
    const AgentConfig derived = fromText(withApi);
    if (access("/var/run", W_OK | X_OK) == 0) {
        EXPECT_EQ(derived.toml()->getString("api-http.socket", ""), "/var/run/monitor-agent.sock");
        EXPECT_NE(derived.toml()->locate("api-http.socket").find("derived from a Go agent's config"), std::string::npos)
            << derived.toml()->locate("api-http.socket");
    } else {
        EXPECT_FALSE(derived.toml()->has("api-http.socket"));
        EXPECT_NE(derived.settings().skippedModules.back().find("serves TCP only"), std::string::npos);
    }
    const AgentConfig off = fromText(withApi + "socket = \"\"\n");
    EXPECT_EQ(off.toml()->getString("api-http.socket", "unset"), "");
    const AgentConfig own = fromText(std::string(kSeed) + "[modules]\nload = [\"api-http\"]\n");
    EXPECT_FALSE(own.toml()->has("api-http.socket"));
}
