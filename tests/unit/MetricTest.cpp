// Metric: tag order, the host-tag and timestamp rule, name validation, and the Go agent's rules
// for tag values and decimal strings.
#include <agent/Metric.h>

#include <gtest/gtest.h>

using agent::Metric;

TEST(Metric, SetTagKeepsTagsSortedAndReplacesExistingKeys) {
    Metric m;
    m.setTag("zone", "a");
    m.setTag("host", "h1");
    m.setTag("core", "3");
    m.setTag("host", "h2");
    ASSERT_EQ(m.tags.size(), 3u);
    EXPECT_EQ(m.tags[0].key, "core");
    EXPECT_EQ(m.tags[1].key, "host");
    EXPECT_EQ(m.tags[1].value, "h2");
    EXPECT_EQ(m.tags[2].key, "zone");
}

TEST(Metric, MakePointHasTheSingleFieldValue) {
    const Metric m = agent::makePoint("ns", "net.in", 1.5, 1700000000);
    ASSERT_EQ(m.fields.size(), 1u);
    EXPECT_EQ(m.fields[0].key, "value");
    EXPECT_EQ(std::get<double>(m.fields[0].value), 1.5);
    EXPECT_EQ(m.ns, "ns");
}

TEST(Metric, NormalizeAddsTheHostTagOnlyWhenMissingOrEmpty) {
    Metric missing = agent::makePoint("", "m", 1.0, 1700000000);
    agent::normalizeForSink(missing, "agent-host", 1800000000);
    EXPECT_EQ(*missing.findTag("host"), "agent-host");

    Metric own = agent::makePoint("", "m", 1.0, 1700000000);
    own.setTag("host", "other");
    agent::normalizeForSink(own, "agent-host", 1800000000);
    EXPECT_EQ(*own.findTag("host"), "other");

    Metric empty = agent::makePoint("", "m", 1.0, 1700000000);
    empty.setTag("host", "");
    agent::normalizeForSink(empty, "agent-host", 1800000000);
    EXPECT_EQ(*empty.findTag("host"), "agent-host");
}

TEST(Metric, NormalizeReplacesTimestampsThatAreNotSecondsWithNow) {
    const std::int64_t now = 1800000000;
    for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-5}, std::int64_t{999'999'999}, std::int64_t{1'700'000'000'000},
                             std::int64_t{1'700'000'000'000'000'000}}) {
        Metric m = agent::makePoint("", "m", 1.0, bad);
        agent::normalizeForSink(m, "h", now);
        EXPECT_EQ(m.timestamp, now) << bad;
    }
    for (std::int64_t good : {std::int64_t{1'000'000'000}, std::int64_t{1'700'000'000}, std::int64_t{9'999'999'999}}) {
        Metric m = agent::makePoint("", "m", 1.0, good);
        agent::normalizeForSink(m, "h", now);
        EXPECT_EQ(m.timestamp, good);
    }
}

TEST(Metric, ValidNamesAreLettersDigitsDotUnderscoreAndDash) {
    EXPECT_TRUE(agent::isValidName("cpu.idle_core-1"));
    EXPECT_FALSE(agent::isValidName(""));
    EXPECT_FALSE(agent::isValidName("a b"));
    EXPECT_FALSE(agent::isValidName("../etc"  "/passwd"));
    EXPECT_FALSE(agent::isValidName("naïve"));
    EXPECT_FALSE(agent::isValidName("."));
    EXPECT_FALSE(agent::isValidName(".."));
    EXPECT_TRUE(agent::isValidName("..."));
    EXPECT_TRUE(agent::isValidName(std::string(128, 'a'), 128));
    EXPECT_FALSE(agent::isValidName(std::string(129, 'a'), 128));
}

TEST(Metric, TidyTrimsTagValuesAndTurnsInnerSpacesIntoDashes) {
    Metric m = agent::makePoint("", "m", 1.0, 1700000000);
    m.setTag("a", " web server 1 ");
    m.setTag("b", "\tdisk  0\n");
    m.setTag("c", "   ");
    m.setTag("d", "plain");
    agent::tidyTagValues(m);
    EXPECT_EQ(*m.findTag("a"), "web-server-1");
    EXPECT_EQ(*m.findTag("b"), "disk--0"); // as the Go agent: each space becomes '-'
    EXPECT_EQ(*m.findTag("c"), "");
    EXPECT_EQ(*m.findTag("d"), "plain");
}

TEST(Metric, DecimalStringsAreFiniteDecimalNumbersOnly) {
    double value = 0;
    for (const auto& [text, expected] : std::vector<std::pair<std::string, double>>{
             {"12.34", 12.34}, {"-1", -1}, {"+2.5", 2.5}, {".5", 0.5}, {"5.", 5}, {"1e3", 1000}, {"-2.5E-1", -0.25}, {"0", 0}}) {
        EXPECT_TRUE(agent::parseDecimalNumber(text, value)) << text;
        EXPECT_DOUBLE_EQ(value, expected) << text;
    }
    for (const std::string text : {"", "abc", "12.34abc", " 1", "1 ", "inf", "-Infinity", "nan", "0x10", "1e", "1e+",
                                   ".", "-", "+", "1e999", "1,5", "--1", "e5"}) {
        EXPECT_FALSE(agent::parseDecimalNumber(text, value)) << text;
    }
}
