// Plugin output parsing and the run's result metric; disabled plugins that persist and lapse.
#include "DisabledPlugins.h"
#include "PluginOutput.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

using agent::exec::parsePluginOutput;
using agent::exec::RunStatus;

TEST(PluginOutput, EntriesBecomePluginMetricsInThePluginsNamespace) {
    const auto parsed = parsePluginOutput(
        R"([{"name": "disk.used", "timestamp": 1700000000, "tags": {"mount": "/data", "n": 3}, "value": 42},
            {"name": "ratio", "value": 0.5}, {"name": "up", "value": true}, {"name": "state", "value": "degraded"}])",
        "ops", "disk");
    ASSERT_TRUE(parsed.valid);
    EXPECT_EQ(parsed.dropped, 0u);
    ASSERT_EQ(parsed.metrics.size(), 4u);
    const agent::Metric& first = parsed.metrics[0];
    EXPECT_EQ(first.ns, "ops");
    EXPECT_EQ(first.name, "PLUGIN.disk.disk.used");
    EXPECT_EQ(first.timestamp, 1700000000);
    EXPECT_EQ(*first.findTag("mount"), "/data");
    EXPECT_EQ(*first.findTag("n"), "3");
    EXPECT_EQ(std::get<std::int64_t>(first.fields.at(0).value), 42);
    EXPECT_EQ(std::get<double>(parsed.metrics[1].fields.at(0).value), 0.5);
    EXPECT_EQ(std::get<bool>(parsed.metrics[2].fields.at(0).value), true);
    EXPECT_EQ(std::get<std::string>(parsed.metrics[3].fields.at(0).value), "degraded");
    EXPECT_EQ(parsed.metrics[1].timestamp, 0); // the bus makes it "now"
}

TEST(PluginOutput, BadEntriesAreDroppedAndCountedTheRestKept) {
    const auto parsed = parsePluginOutput(R"([{"name": "with space", "value": 1}, {"name": "ok", "value": 1},
        {"value": 2}, 7, {"name": "novalue"}, {"name": "obj", "value": {"a": 1}}, {"name": "t", "tags": [1], "value": 1},
        {"name": "../x", "value": 1}])",
                                          "ns", "p");
    ASSERT_TRUE(parsed.valid);
    ASSERT_EQ(parsed.metrics.size(), 1u);
    EXPECT_EQ(parsed.metrics[0].name, "PLUGIN.p.ok");
    EXPECT_EQ(parsed.dropped, 7u);
    EXPECT_NE(parsed.firstProblem.find("with space"), std::string::npos) << parsed.firstProblem;
}

TEST(PluginOutput, OutputThatIsNotAJsonListIsInvalid) {
    EXPECT_FALSE(parsePluginOutput("not json", "ns", "p").valid);
    EXPECT_FALSE(parsePluginOutput(R"({"name": "x", "value": 1})", "ns", "p").valid);
    const auto empty = parsePluginOutput(" \n", "ns", "p");
    EXPECT_TRUE(empty.valid);
    EXPECT_TRUE(empty.metrics.empty());
}

TEST(PluginOutput, ResultMetricIsZeroWhenOkAndOneOtherwiseWithItsStatus) {
    const agent::Metric ok = agent::exec::resultMetric("ns", "disk", RunStatus::Ok, 1700000000);
    EXPECT_EQ(ok.name, "PLUGIN.disk");
    EXPECT_EQ(std::get<std::int64_t>(ok.fields.at(0).value), 0);
    EXPECT_EQ(*ok.findTag("status"), "ok");
    const std::pair<RunStatus, const char*> failures[] = {
        {RunStatus::Timeout, "timeout"}, {RunStatus::Error, "error"}, {RunStatus::BadOutput, "bad_output"},
        {RunStatus::NotRunnable, "error"}};
    for (const auto& [status, tag] : failures) {
        const agent::Metric m = agent::exec::resultMetric("ns", "disk", status, 1700000000);
        EXPECT_EQ(std::get<std::int64_t>(m.fields.at(0).value), 1);
        EXPECT_EQ(*m.findTag("status"), tag);
    }
}

TEST(DisabledPlugins, DisableSurvivesARestartAndLapsesAfterItsTtl) {
    agent::test::TempDir dir;
    const std::string file = dir / "disabled.json";
    {
        agent::exec::DisabledPlugins disabled(file, std::chrono::seconds(100));
        EXPECT_EQ(disabled.load(), "");
        EXPECT_EQ(disabled.disable("ns", "disk", 1000), "");
        EXPECT_TRUE(disabled.isDisabled("ns", "disk", 1050));
        EXPECT_FALSE(disabled.isDisabled("ns", "cpu", 1050));
    }
    agent::exec::DisabledPlugins restarted(file, std::chrono::seconds(100));
    EXPECT_EQ(restarted.load(), "");
    EXPECT_TRUE(restarted.isDisabled("ns", "disk", 1099));
    EXPECT_EQ(restarted.disabledUntil("ns", "disk", 1099), 1100);
    EXPECT_FALSE(restarted.isDisabled("ns", "disk", 1100)); // lapsed by itself
    EXPECT_EQ(restarted.disable("ns", "cpu", 2000), "");
    EXPECT_EQ(restarted.enable("ns", "cpu"), "");
    EXPECT_FALSE(restarted.isDisabled("ns", "cpu", 2001));
}

TEST(DisabledPlugins, DamagedFileEnablesEveryPluginAndSaysSo) {
    agent::test::TempDir dir;
    agent::test::writeFile(dir / "disabled.json", "{broken");
    agent::exec::DisabledPlugins disabled(dir / "disabled.json", std::chrono::seconds(100));
    EXPECT_NE(disabled.load().find("every plugin is enabled"), std::string::npos);
    EXPECT_FALSE(disabled.isDisabled("ns", "disk", 1));
}
