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
    for (const char* output : {"not json", R"({"a": 1})", R"({"name": "x", "value": 1})", "42", "nul", "null null",
                               "\"null\"", "[1", "NULL"}) {
        const auto parsed = parsePluginOutput(output, "ns", "p");
        EXPECT_FALSE(parsed.valid) << output;
        EXPECT_FALSE(parsed.error.empty()) << output;
        EXPECT_TRUE(parsed.metrics.empty()) << output;
    }
}

// lodastack-plugins/nvidia prints null on a host without a GPU; the Go agent took that, and an
// empty output, as a run with nothing to report.
TEST(PluginOutput, NullOrBlankOutputIsAGoodRunWithNoMetrics) {
    for (const char* output : {"null", "  null \n", "\tnull", "", " \n", "\r\n\t  ", "[]", " [ ]\n"}) {
        const auto parsed = parsePluginOutput(output, "ns", "p");
        EXPECT_TRUE(parsed.valid) << "[" << output << "] " << parsed.error;
        EXPECT_TRUE(parsed.metrics.empty()) << output;
        EXPECT_EQ(parsed.dropped, 0u) << output;
        EXPECT_EQ(parsed.skipped, 0u) << output;
    }
}

// The loda pipeline stored a value "12.34" as the number 12.34; other strings stay strings.
TEST(PluginOutput, DecimalStringValuesBecomeFloatsOtherStringsStayStrings) {
    const auto parsed = parsePluginOutput(
        R"([{"name": "a", "value": "12.34"}, {"name": "b", "value": "-7"}, {"name": "c", "value": "1e3"},
            {"name": "d", "value": ".5"}, {"name": "e", "value": "degraded"}, {"name": "f", "value": " 12"},
            {"name": "g", "value": "inf"}, {"name": "h", "value": "0x10"}, {"name": "i", "value": ""},
            {"name": "j", "value": "1.2.3"}])",
        "ns", "p");
    ASSERT_TRUE(parsed.valid) << parsed.error;
    ASSERT_EQ(parsed.metrics.size(), 10u);
    const std::pair<std::size_t, double> numbers[] = {{0, 12.34}, {1, -7.0}, {2, 1000.0}, {3, 0.5}};
    for (const auto& [index, expected] : numbers) {
        const auto& value = parsed.metrics[index].fields.at(0).value;
        ASSERT_TRUE(std::holds_alternative<double>(value)) << parsed.metrics[index].name;
        EXPECT_DOUBLE_EQ(std::get<double>(value), expected) << parsed.metrics[index].name;
    }
    const std::pair<std::size_t, const char*> strings[] = {
        {4, "degraded"}, {5, " 12"}, {6, "inf"}, {7, "0x10"}, {8, ""}, {9, "1.2.3"}};
    for (const auto& [index, expected] : strings) {
        const auto& value = parsed.metrics[index].fields.at(0).value;
        ASSERT_TRUE(std::holds_alternative<std::string>(value)) << parsed.metrics[index].name;
        EXPECT_EQ(std::get<std::string>(value), expected) << parsed.metrics[index].name;
    }
}

// A null value is "no reading this time": skipped and counted apart from the bad entries, which
// are the ones the module warns about.
TEST(PluginOutput, NullValueEntriesAreSkippedAndCountedNotDropped) {
    const auto parsed = parsePluginOutput(
        R"([{"name": "gpu.util", "value": null}, {"name": "up", "value": 1},
            {"name": "gpu.mem", "tags": {"gpu": "0"}, "value": null}, {"name": "novalue"}])",
        "ns", "p");
    ASSERT_TRUE(parsed.valid) << parsed.error;
    ASSERT_EQ(parsed.metrics.size(), 1u);
    EXPECT_EQ(parsed.metrics[0].name, "PLUGIN.p.up");
    EXPECT_EQ(parsed.skipped, 2u);
    EXPECT_EQ(parsed.dropped, 1u) << "a missing value is still a bad entry";
    EXPECT_NE(parsed.firstProblem.find("novalue"), std::string::npos) << parsed.firstProblem;

    const auto onlyNulls = parsePluginOutput(R"([{"name": "gpu.util", "value": null}])", "ns", "p");
    EXPECT_TRUE(onlyNulls.valid);
    EXPECT_EQ(onlyNulls.skipped, 1u);
    EXPECT_EQ(onlyNulls.dropped, 0u);
    EXPECT_TRUE(onlyNulls.firstProblem.empty());
}

TEST(PluginOutput, ExcerptIsOneQuotedLineAndSaysWhenItWasCut) {
    EXPECT_EQ(agent::exec::outputExcerpt("<html>\n\t\"x\" \\ \x01\xc3\xa9\r"),
              "\"<html>\\n\\t\\\"x\\\" \\\\ \\x01\\xc3\\xa9\\r\"");
    const std::string longOutput(1000, 'a');
    const std::string cut = agent::exec::outputExcerpt(longOutput);
    EXPECT_EQ(cut, "\"" + std::string(200, 'a') + "\" (first 200 of 1000 bytes)");
    EXPECT_EQ(agent::exec::outputExcerpt(std::string(200, 'b')), "\"" + std::string(200, 'b') + "\"");
    EXPECT_EQ(agent::exec::outputExcerpt("abcdef", 3), "\"abc\" (first 3 of 6 bytes)");
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
