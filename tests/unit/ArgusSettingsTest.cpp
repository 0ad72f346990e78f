// reporter-argus settings: the environment variables of the Argus agent, the config section as a
// fallback, and the node identity's order (variables, node.json, host name).
#include "ArgusSettings.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace {

using namespace agent::argus;

using Values = std::map<std::string, std::string>;

// A source that gives the settings named in `values` (by variable for the environment, by key
// for the section).
SettingLookup environment(const Values& values) {
    return [values](const Setting& setting) -> std::optional<RawSetting> {
        const auto found = values.find(setting.variable);
        if (found == values.end()) return std::nullopt;
        return RawSetting{found->second, setting.variable};
    };
}

SettingLookup section(const Values& values) {
    return [values](const Setting& setting) -> std::optional<RawSetting> {
        const auto found = values.find(setting.key);
        if (found == values.end()) return std::nullopt;
        return RawSetting{found->second, std::string("agent.toml:9: [reporter-argus] ") + setting.key};
    };
}

SettingsResult resolve(const Values& env, const Values& config = {}) {
    return resolveSettings(environment(env), section(config));
}

std::string joined(const SettingsResult& result) {
    std::string text;
    for (const std::string& problem : result.problems) text += problem + "\n";
    return text;
}

const Values kMinimal = {{"MASTER_ENDPOINT", "master:3000"}};

TEST(ArgusSettings, MasterEndpointWithoutSchemeGetsHttp) {
    const SettingsResult result = resolve(kMinimal);
    EXPECT_TRUE(result.problems.empty()) << joined(result);
    EXPECT_EQ(result.settings.masterUrl, "http://master:3000");
}

TEST(ArgusSettings, MasterEndpointKeepsItsSchemeAndPathWithoutTrailingSlash) {
    EXPECT_EQ(resolve({{"MASTER_ENDPOINT", "http://10.0.0.1:3000/argus/"}}).settings.masterUrl,
              "http://10.0.0.1:3000/argus");
}

TEST(ArgusSettings, MissingMasterEndpointIsAnErrorNamingTheVariable) {
    const SettingsResult result = resolve({});
    ASSERT_EQ(result.problems.size(), 1u);
    EXPECT_NE(result.problems[0].find("MASTER_ENDPOINT is not set"), std::string::npos) << result.problems[0];
}

TEST(ArgusSettings, EmptyVariableCountsAsUnset) {
    EXPECT_EQ(resolve({{"MASTER_ENDPOINT", ""}}).problems.size(), 1u);
    EXPECT_EQ(resolve({{"MASTER_ENDPOINT", ""}}, {{"master_endpoint", "m:1"}}).settings.masterUrl, "http://m:1");
}

TEST(ArgusSettings, HttpsAndHostlessEndpointsAreRefusedWithTheValue) {
    for (const std::string bad : {"https://master:3000", "http://:3000", "http://m:3000/?x=1"}) {
        const SettingsResult result = resolve({{"MASTER_ENDPOINT", bad}});
        ASSERT_EQ(result.problems.size(), 1u) << bad;
        EXPECT_NE(result.problems[0].find("MASTER_ENDPOINT=\"" + bad + "\""), std::string::npos) << result.problems[0];
    }
}

TEST(ArgusSettings, ReportIntervalDefaultsToSixtySeconds) {
    EXPECT_EQ(resolve(kMinimal).settings.reportIntervalSeconds, 60);
}

TEST(ArgusSettings, ReportIntervalTakesAPositiveInteger) {
    Values env = kMinimal;
    env["REPORT_INTERVAL_SECONDS"] = "15";
    EXPECT_EQ(resolve(env).settings.reportIntervalSeconds, 15);
}

TEST(ArgusSettings, EveryOtherReportIntervalIsAnErrorNamingTheVariableAndTheValue) {
    for (const std::string bad : {"0", "-5", "abc", "1.5", " 5", "5s", "+5", "99999999999", "2147483648"}) {
        Values env = kMinimal;
        env["REPORT_INTERVAL_SECONDS"] = bad;
        const SettingsResult result = resolve(env);
        ASSERT_EQ(result.problems.size(), 1u) << bad;
        EXPECT_NE(result.problems[0].find("REPORT_INTERVAL_SECONDS=\"" + bad + "\""), std::string::npos)
            << result.problems[0];
        EXPECT_NE(result.problems[0].find("positive integer"), std::string::npos) << result.problems[0];
    }
}

TEST(ArgusSettings, SectionGivesWhatTheEnvironmentDoesNot) {
    const SettingsResult result =
        resolve({}, {{"master_endpoint", "m:3000"}, {"report_interval", "5"}, {"hostname", "dev-bob-2"}});
    EXPECT_TRUE(result.problems.empty()) << joined(result);
    EXPECT_EQ(result.settings.masterUrl, "http://m:3000");
    EXPECT_EQ(result.settings.reportIntervalSeconds, 5);
    EXPECT_EQ(result.settings.hostname, "dev-bob-2");
}

TEST(ArgusSettings, EnvironmentWinsOverTheSection) {
    const SettingsResult result =
        resolve({{"MASTER_ENDPOINT", "env-master:1"}, {"REPORT_INTERVAL_SECONDS", "7"}, {"AGENT_HOSTNAME", "h-env"}},
                {{"master_endpoint", "cfg-master:2"}, {"report_interval", "9"}, {"hostname", "h-cfg"}});
    EXPECT_EQ(result.settings.masterUrl, "http://env-master:1");
    EXPECT_EQ(result.settings.reportIntervalSeconds, 7);
    EXPECT_EQ(result.settings.hostname, "h-env");
}

TEST(ArgusSettings, ABadSectionValueIsNamedWithItsKeyAndLine) {
    const SettingsResult result = resolve(kMinimal, {{"report_interval", "0"}});
    ASSERT_EQ(result.problems.size(), 1u);
    EXPECT_NE(result.problems[0].find("agent.toml:9: [reporter-argus] report_interval=\"0\""), std::string::npos)
        << result.problems[0];
}

TEST(ArgusSettings, AllThreeIdentityVariablesGiveTheIdentity) {
    Values env = kMinimal;
    env.insert({{"AGENT_ENV", "prod"}, {"AGENT_USER", "ops"}, {"AGENT_INSTANCE", "7"}});
    const SettingsResult result = resolve(env);
    ASSERT_TRUE(result.settings.identity.has_value());
    EXPECT_EQ(*result.settings.identity, (NodeIdentity{"prod", "ops", "7"}));
}

TEST(ArgusSettings, NoIdentityVariableIsFine) {
    const SettingsResult result = resolve(kMinimal);
    EXPECT_TRUE(result.problems.empty());
    EXPECT_FALSE(result.settings.identity.has_value());
}

TEST(ArgusSettings, OneOrTwoIdentityVariablesAreAnErrorNamingTheMissingOnes) {
    const std::vector<std::pair<Values, std::vector<std::string>>> cases = {
        {{{"AGENT_ENV", "dev"}}, {"AGENT_USER", "AGENT_INSTANCE"}},
        {{{"AGENT_USER", "u"}}, {"AGENT_ENV", "AGENT_INSTANCE"}},
        {{{"AGENT_INSTANCE", "1"}}, {"AGENT_ENV", "AGENT_USER"}},
        {{{"AGENT_ENV", "dev"}, {"AGENT_USER", "u"}}, {"AGENT_INSTANCE"}},
        {{{"AGENT_ENV", "dev"}, {"AGENT_INSTANCE", "1"}}, {"AGENT_USER"}},
        {{{"AGENT_USER", "u"}, {"AGENT_INSTANCE", "1"}}, {"AGENT_ENV"}},
    };
    for (const auto& [given, missing] : cases) {
        Values env = kMinimal;
        env.insert(given.begin(), given.end());
        const SettingsResult result = resolve(env);
        ASSERT_EQ(result.problems.size(), 1u) << joined(result);
        const std::string& problem = result.problems[0];
        const std::string missingPart = problem.substr(problem.find(", missing "));
        for (const std::string& name : missing) EXPECT_NE(missingPart.find(name), std::string::npos) << problem;
        for (const auto& [name, value] : given) {
            EXPECT_NE(problem.find(name + "=\"" + value + "\""), std::string::npos) << problem;
            EXPECT_EQ(missingPart.find(name), std::string::npos) << problem;
        }
        EXPECT_FALSE(result.settings.identity.has_value());
    }
}

TEST(ArgusSettings, EveryProblemIsReportedAtOnce) {
    const SettingsResult result = resolve({{"REPORT_INTERVAL_SECONDS", "x"}, {"AGENT_ENV", "dev"}});
    EXPECT_EQ(result.problems.size(), 3u) << joined(result);
}

TEST(ArgusSettings, HostnameThatCannotNameADirectoryIsRefused) {
    for (const std::string bad : {"..", "a/b", "."}) {
        Values env = kMinimal;
        env["AGENT_HOSTNAME"] = bad;
        EXPECT_EQ(resolve(env).problems.size(), 1u) << bad;
    }
}

TEST(ArgusIdentity, HostnameGivesItsFirstThreeParts) {
    EXPECT_EQ(identityFromHostname("dev-alice-1"), (NodeIdentity{"dev", "alice", "1"}));
    EXPECT_EQ(identityFromHostname("prod-ops-3-gpu-node"), (NodeIdentity{"prod", "ops", "3"}));
    for (const std::string bad : {"", "dev", "dev-alice", "dev-alice-", "dev--1", "-alice-1", "localhost"})
        EXPECT_FALSE(identityFromHostname(bad).has_value()) << bad;
}

TEST(ArgusIdentity, VariablesComeFirstThenNodeFileThenHostname) {
    const NodeIdentity variables{"v-env", "v-user", "v-inst"};
    const NodeIdentity saved{"s-env", "s-user", "s-inst"};
    const ResolvedIdentity first = resolveIdentity(variables, saved, "h-u-i");
    EXPECT_EQ(first.identity, variables);
    EXPECT_EQ(first.source, IdentitySource::Settings);
    const ResolvedIdentity second = resolveIdentity(std::nullopt, saved, "h-u-i");
    EXPECT_EQ(second.identity, saved);
    EXPECT_EQ(second.source, IdentitySource::NodeFile);
    const ResolvedIdentity third = resolveIdentity(std::nullopt, std::nullopt, "h-u-i");
    EXPECT_EQ(third.identity, (NodeIdentity{"h", "u", "i"}));
    EXPECT_EQ(third.source, IdentitySource::Hostname);
}

TEST(ArgusIdentity, NoSourceRefusesToStartSayingWhichVariablesToSet) {
    try {
        resolveIdentity(std::nullopt, std::nullopt, "myhost");
        FAIL() << "resolved an identity from nothing";
    } catch (const ArgusStartError& e) {
        const std::string message = e.what();
        for (const char* name : {"AGENT_ENV", "AGENT_USER", "AGENT_INSTANCE", "myhost"})
            EXPECT_NE(message.find(name), std::string::npos) << message;
    }
}

} // namespace
