// The /post body parser: the entries a client may send, every way one can be refused, and the
// simdjson parser agreeing with the Poco::JSON one on all of it.
#include "PostBody.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

using agent::api::parsePaddedPostBody;
using agent::api::parsePostBody;
using agent::api::parsePostBodyWithPoco;
using agent::api::PostParseResult;

namespace {

// Both parsers on one body: same verdict, same metrics, and the same error (only a JSON syntax
// error is worded by each library). Returns the simdjson result.
PostParseResult parseBoth(const std::string& body) {
    PostParseResult fast = parsePostBody(body, "ops");
    const PostParseResult poco = parsePostBodyWithPoco(body, "ops");
    EXPECT_EQ(fast.ok, poco.ok) << body << "\nsimdjson: " << fast.error << "\npoco: " << poco.error;
    if (fast.error.rfind("body is not valid JSON", 0) != 0) {
        EXPECT_EQ(fast.error, poco.error) << body;
    }
    EXPECT_EQ(fast.metrics.size(), poco.metrics.size()) << body;
    EXPECT_EQ(fast.skipped, poco.skipped) << body;
    for (std::size_t i = 0; i < std::min(fast.metrics.size(), poco.metrics.size()); ++i) {
        const agent::Metric& a = fast.metrics[i];
        const agent::Metric& b = poco.metrics[i];
        EXPECT_EQ(a.ns, b.ns);
        EXPECT_EQ(a.name, b.name);
        EXPECT_EQ(a.timestamp, b.timestamp);
        EXPECT_EQ(a.tags.size(), b.tags.size()) << body;
        if (a.tags.size() != b.tags.size()) continue;
        for (std::size_t t = 0; t < a.tags.size(); ++t) {
            EXPECT_EQ(a.tags[t].key, b.tags[t].key);
            EXPECT_EQ(a.tags[t].value, b.tags[t].value);
        }
        EXPECT_EQ(a.fields.size(), b.fields.size()) << body;
        if (a.fields.size() != b.fields.size()) continue;
        for (std::size_t f = 0; f < a.fields.size(); ++f) {
            EXPECT_EQ(a.fields[f].key, b.fields[f].key);
            EXPECT_EQ(a.fields[f].value, b.fields[f].value) << body;
        }
    }
    // The no-copy path gives the same.
    std::string padded = body;
    padded.reserve(body.size() + agent::api::kPostBodyPadding);
    const PostParseResult noCopy = parsePaddedPostBody(padded, padded.capacity(), "ops");
    EXPECT_EQ(noCopy.ok, fast.ok);
    EXPECT_EQ(noCopy.error, fast.error);
    EXPECT_EQ(noCopy.metrics.size(), fast.metrics.size());
    EXPECT_EQ(noCopy.skipped, fast.skipped);
    return fast;
}

void expectRefused(const std::string& body, const std::string& error) {
    const PostParseResult result = parseBoth(body);
    EXPECT_FALSE(result.ok) << body;
    EXPECT_TRUE(result.metrics.empty());
    EXPECT_EQ(result.error, error) << body;
}

void expectRefusedAsJson(const std::string& body) {
    const PostParseResult result = parseBoth(body);
    EXPECT_FALSE(result.ok) << body;
    EXPECT_EQ(result.error.rfind("body is not valid JSON: ", 0), 0u) << body << ": " << result.error;
}

} // namespace

TEST(PostBody, TypicalBodyBecomesRunMetricsInTheNamespace) {
    const PostParseResult result = parseBoth(
        R"([{"name": "disk.used", "timestamp": 1700000000, "tags": {"mount": "/data", "dev": "sda1"}, "value": 42},
            {"name": "load_1-m", "value": 0.75}])");
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_EQ(result.metrics.size(), 2u);
    const agent::Metric& first = result.metrics[0];
    EXPECT_EQ(first.ns, "ops");
    EXPECT_EQ(first.name, "RUN.disk.used");
    EXPECT_EQ(first.timestamp, 1700000000);
    ASSERT_EQ(first.tags.size(), 2u);
    EXPECT_EQ(first.tags[0].key, "dev"); // sorted by key
    EXPECT_EQ(first.tags[0].value, "sda1");
    EXPECT_EQ(first.tags[1].key, "mount");
    EXPECT_EQ(first.tags[1].value, "/data");
    ASSERT_EQ(first.fields.size(), 1u);
    EXPECT_EQ(first.fields[0].key, "value");
    EXPECT_EQ(std::get<std::int64_t>(first.fields[0].value), 42);
    const agent::Metric& second = result.metrics[1];
    EXPECT_EQ(second.name, "RUN.load_1-m");
    EXPECT_EQ(second.timestamp, 0); // the bus makes it "now"
    EXPECT_TRUE(second.tags.empty());
    EXPECT_EQ(std::get<double>(second.fields[0].value), 0.75);
}

TEST(PostBody, EmptyListIsAcceptedWithNoMetricsAndEmptyBodyIsRefused) {
    const PostParseResult empty = parseBoth(" [ ] \n");
    EXPECT_TRUE(empty.ok);
    EXPECT_TRUE(empty.metrics.empty());
    expectRefused("", "empty body");
    expectRefused(" \r\n\t", "empty body");
}

TEST(PostBody, FieldsObjectGivesSeveralFieldsSortedByName) {
    const PostParseResult result =
        parseBoth(R"([{"name": "net", "fields": {"tx": 10, "rx": 20.5, "up": true, "state": "ok"}, "timestamp": 1700000001}])");
    ASSERT_TRUE(result.ok) << result.error;
    const agent::Metric& metric = result.metrics.at(0);
    ASSERT_EQ(metric.fields.size(), 4u);
    EXPECT_EQ(metric.fields[0].key, "rx");
    EXPECT_EQ(std::get<double>(metric.fields[0].value), 20.5);
    EXPECT_EQ(metric.fields[1].key, "state");
    EXPECT_EQ(std::get<std::string>(metric.fields[1].value), "ok");
    EXPECT_EQ(metric.fields[2].key, "tx");
    EXPECT_EQ(std::get<std::int64_t>(metric.fields[2].value), 10);
    EXPECT_EQ(metric.fields[3].key, "up");
    EXPECT_EQ(std::get<bool>(metric.fields[3].value), true);
    EXPECT_EQ(metric.timestamp, 1700000001);
}

TEST(PostBody, EveryValueTypeKeepsItsType) {
    const PostParseResult result = parseBoth(
        R"([{"name": "i", "value": -7}, {"name": "u", "value": 18446744073709551615}, {"name": "d", "value": 1.0},
            {"name": "e", "value": 1E2}, {"name": "b", "value": false}, {"name": "s", "value": "h\u00e9 \"x\""},
            {"name": "max", "value": 9223372036854775807}, {"name": "min", "value": -9223372036854775808},
            {"name": "big", "value": 9223372036854775808}])");
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_EQ(result.metrics.size(), 9u);
    EXPECT_EQ(std::get<std::int64_t>(result.metrics[0].fields[0].value), -7);
    EXPECT_EQ(std::get<std::uint64_t>(result.metrics[1].fields[0].value), UINT64_MAX);
    EXPECT_EQ(std::get<double>(result.metrics[2].fields[0].value), 1.0); // a float stays a double
    EXPECT_EQ(std::get<double>(result.metrics[3].fields[0].value), 100.0);
    EXPECT_EQ(std::get<bool>(result.metrics[4].fields[0].value), false);
    EXPECT_EQ(std::get<std::string>(result.metrics[5].fields[0].value), "h\xc3\xa9 \"x\"");
    EXPECT_EQ(std::get<std::int64_t>(result.metrics[6].fields[0].value), INT64_MAX);
    EXPECT_EQ(std::get<std::int64_t>(result.metrics[7].fields[0].value), INT64_MIN);
    EXPECT_EQ(std::get<std::uint64_t>(result.metrics[8].fields[0].value), 9223372036854775808ull);
}

TEST(PostBody, TagValuesAreConvertedToStrings) {
    const PostParseResult result = parseBoth(
        R"([{"name": "t", "value": 1, "tags": {"s": "x", "i": -3, "u": 18446744073709551615, "d": 0.5, "e": 1e20,
            "w": 2.0, "t": true, "f": false, "empty": ""}}])");
    ASSERT_TRUE(result.ok) << result.error;
    const agent::Metric& metric = result.metrics.at(0);
    EXPECT_EQ(*metric.findTag("s"), "x");
    EXPECT_EQ(*metric.findTag("i"), "-3");
    EXPECT_EQ(*metric.findTag("u"), "18446744073709551615");
    EXPECT_EQ(*metric.findTag("d"), "0.5");
    EXPECT_EQ(*metric.findTag("e"), "1e+20");
    EXPECT_EQ(*metric.findTag("w"), "2");
    EXPECT_EQ(*metric.findTag("t"), "true");
    EXPECT_EQ(*metric.findTag("f"), "false");
    EXPECT_EQ(*metric.findTag("empty"), "");
}

TEST(PostBody, TimestampIsSecondsWithTheFractionCutOff) {
    const PostParseResult result = parseBoth(
        R"([{"name": "a", "value": 1, "timestamp": 1700000000.9}, {"name": "b", "value": 1, "timestamp": -5.5},
            {"name": "c", "value": 1, "timestamp": 1700000000123}, {"name": "d", "value": 1, "timestamp": null}])");
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.metrics[0].timestamp, 1700000000);
    EXPECT_EQ(result.metrics[1].timestamp, -5);
    EXPECT_EQ(result.metrics[2].timestamp, 1700000000123); // milliseconds: the bus deals with them
    EXPECT_EQ(result.metrics[3].timestamp, 0);
}

TEST(PostBody, UnknownKeysAreIgnoredAndARepeatedKeyCountsOnceWithItsLastValue) {
    const PostParseResult result = parseBoth(
        R"([{"name": "bad name", "name": "x", "unit": "ms", "value": {"a": 1}, "value": 3,
             "tags": {"k": "1", "k": "2"}, "extra": [1, {"deep": null}]}])");
    ASSERT_TRUE(result.ok) << result.error;
    const agent::Metric& metric = result.metrics.at(0);
    EXPECT_EQ(metric.name, "RUN.x");
    EXPECT_EQ(std::get<std::int64_t>(metric.fields.at(0).value), 3);
    ASSERT_EQ(metric.tags.size(), 1u);
    EXPECT_EQ(metric.tags[0].value, "2");
}

TEST(PostBody, EachKindOfBadEntryRefusesTheWholeBodyNamingTheEntry) {
    const std::string good = R"({"name": "ok", "value": 1}, )";
    expectRefused("[" + good + R"({"name": "with space", "value": 1}])",
                  R"(entry 1: name "with space" does not match [0-9A-Za-z._-]+ (at most 200 characters))");
    expectRefused("[" + good + good + R"({"name": "..", "value": 1}])",
                  R"(entry 2: name ".." does not match [0-9A-Za-z._-]+ (at most 200 characters))");
    expectRefused("[" + std::string(R"({"name": ")") + std::string(201, 'a') + R"(", "value": 1}])",
                  "entry 0: name \"" + std::string(64, 'a') + "...\" does not match [0-9A-Za-z._-]+ (at most 200 characters)");
    expectRefused(R"([{"value": 1}])", "entry 0: name missing");
    expectRefused(R"([{"name": null, "value": 1}])", "entry 0: name missing");
    expectRefused(R"([{"name": 5, "value": 1}])", "entry 0: name is a number, not a string");
    expectRefused("[" + good + R"({"name": "x"}])", "entry 1: value missing and no fields");
    expectRefused(R"([{"name": "x", "timestamp": 1, "tags": {}}])", "entry 0: value missing and no fields");
    expectRefused(R"([{"name": "x", "value": {"a": 1}}])", "entry 0: value is an object, not a number, bool or string");
    expectRefused(R"([{"name": "x", "value": [1]}])", "entry 0: value is a list, not a number, bool or string");
    expectRefused(R"([{"name": "x", "value": 1, "fields": {"a": 1}}])", "entry 0: both value and fields; give one");
    expectRefused(R"([{"name": "x", "value": null, "fields": {"a": 1}}])", "entry 0: both value and fields; give one");
    expectRefused(R"([{"name": "x", "fields": [1]}])", "entry 0: fields is a list, not an object");
    expectRefused(R"([{"name": "x", "fields": {}}])", "entry 0: fields is empty");
    expectRefused(R"([{"name": "x", "fields": {"a b": 1}}])",
                  R"(entry 0: field name "a b" does not match [0-9A-Za-z._-]+ (at most 200 characters))");
    expectRefused(R"([{"name": "x", "fields": {"a": 1, "b": [2]}}])", R"(entry 0: field "b" is a list, not a number, bool or string)");
    expectRefused(R"([{"name": "x", "value": 1, "tags": ["a"]}])", "entry 0: tags is a list, not an object");
    expectRefused(R"([{"name": "x", "value": 1, "tags": "a=b"}])", "entry 0: tags is a string, not an object");
    expectRefused(R"([{"name": "x", "value": 1, "tags": {"z": {"a": 1}, "b": "ok"}}])",
                  R"(entry 0: tag "z" is an object, not a string, number or bool)");
    expectRefused(R"([{"name": "x", "value": 1, "tags": {"a": null}}])", R"(entry 0: tag "a" is null, not a string, number or bool)");
    expectRefused(R"([{"name": "x", "value": 1, "tags": {"": "v"}}])", "entry 0: a tag has an empty key");
    expectRefused(R"([{"name": "x", "value": 1, "timestamp": "1700000000"}])", "entry 0: timestamp is a string, not a number");
    expectRefused(R"([{"name": "x", "value": 1, "timestamp": 9223372036854775808}])", "entry 0: timestamp out of range");
    expectRefused(R"([{"name": "x", "value": 1, "timestamp": 1e19}])", "entry 0: timestamp out of range");
    expectRefused("[" + good + "7]", "entry 1: not an object but a number");
    expectRefused("[" + good + "[]]", "entry 1: not an object but a list");
    expectRefused("[null]", "entry 0: not an object but null");
}

TEST(PostBody, BodyThatIsNotAListOrNotJsonIsRefused) {
    expectRefused(R"({"name": "x", "value": 1})", "body is not a JSON list");
    expectRefused("42", "body is not a JSON list");
    expectRefusedAsJson(R"([{"name": "x", "value": 1}] trailing)");
    expectRefusedAsJson(R"([{"name": "x", "value": 1}][])");
    expectRefusedAsJson(R"([{"name": "x", "value": 1},])");
    expectRefusedAsJson(R"([{"name": "x", "value": 01}])");
    expectRefusedAsJson(R"([{"name": "x", "value": NaN}])");
    expectRefusedAsJson(R"([{"name": "x", "value": 1e400}])");
    expectRefusedAsJson("[{\"name\": \"x\", \"value\": \"\xff\"}]"); // not UTF-8
    expectRefusedAsJson(R"([{"name": "x", "value": "\ud800"}])");   // lone surrogate
    expectRefusedAsJson(R"([{"name": "x", "value": 1})");
}

TEST(PostBody, IntegersBeyondSixtyFourBitsAreRefusedNotWrapped) {
    // Poco 1.11 alone would read 2^64 as 0 and -2^63-1 as -2^63.
    expectRefusedAsJson(R"([{"name": "x", "value": 18446744073709551616}])");
    expectRefusedAsJson(R"([{"name": "x", "value": -9223372036854775809}])");
    expectRefusedAsJson(R"([{"name": "x", "value": 1, "ignored": 99999999999999999999999}])");
    expectRefusedAsJson(R"([{"name": "x", "value": 1, "tags": {"k": 18446744073709551616}}])");
    // Poco 1.11 alone would read this one as -9223372036854033408.
    const PostParseResult nearMin = parseBoth(R"([{"name": "x", "value": -9223372036854032967}])");
    ASSERT_TRUE(nearMin.ok) << nearMin.error;
    EXPECT_EQ(std::get<std::int64_t>(nearMin.metrics[0].fields[0].value), -9223372036854032967);
    const PostParseResult huge = parseBoth(R"([{"name": "x", "value": 1.8446744073709551616e19}, {"name": "y", "value": -1e300}])");
    ASSERT_TRUE(huge.ok) << huge.error;
    EXPECT_EQ(std::get<double>(huge.metrics[0].fields[0].value), 18446744073709551616.0);
    EXPECT_EQ(std::get<double>(huge.metrics[1].fields[0].value), -1e300);
}

TEST(PostBody, NestingIsLimitedAlikeInBothParsers) {
    const auto nested = [](std::size_t depth) {
        // the entry and its ignored key already put the innermost list at depth 2
        return R"([{"name": "x", "value": 1, "deep": )" + std::string(depth, '[') + "1" + std::string(depth, ']') + "}]";
    };
    EXPECT_TRUE(parseBoth(nested(agent::api::kMaxPostDepth - 3)).ok);
    expectRefusedAsJson(nested(agent::api::kMaxPostDepth - 2));
    expectRefusedAsJson(std::string(5000, '['));
}

TEST(PostBody, AtMostAMillionEntriesAreAccepted) {
    std::string body = "[";
    for (std::size_t i = 0; i < agent::api::kMaxPostEntries; ++i) body += R"({"name":"n","value":1},)";
    const std::string limit = body.substr(0, body.size() - 1) + "]";
    EXPECT_EQ(parsePostBody(limit, "ops").metrics.size(), agent::api::kMaxPostEntries);
    body += R"({"name":"n","value":1}])";
    const PostParseResult fast = parsePostBody(body, "ops");
    EXPECT_FALSE(fast.ok);
    EXPECT_EQ(fast.error, "body has more than 1000000 entries");
    EXPECT_EQ(parsePostBodyWithPoco(body, "ops").error, "body has more than 1000000 entries");
}

TEST(PostBody, DecimalNumberStringsBecomeDoublesInValueAndFields) {
    const PostParseResult result = parseBoth(
        R"([{"name": "a", "value": "12.34"}, {"name": "b", "value": "-1e3"}, {"name": "c", "value": ".5"},
            {"name": "d", "value": "42"}, {"name": "e", "value": "+7.25E-1"},
            {"name": "f", "fields": {"n": "0.001", "s": "up", "i": 3}}])");
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_EQ(result.metrics.size(), 6u);
    EXPECT_EQ(std::get<double>(result.metrics[0].fields[0].value), 12.34);
    EXPECT_EQ(std::get<double>(result.metrics[1].fields[0].value), -1000.0);
    EXPECT_EQ(std::get<double>(result.metrics[2].fields[0].value), 0.5);
    EXPECT_EQ(std::get<double>(result.metrics[3].fields[0].value), 42.0); // a double, as the loda pipeline stored it
    EXPECT_EQ(std::get<double>(result.metrics[4].fields[0].value), 0.725);
    const agent::Metric& fields = result.metrics[5];
    ASSERT_EQ(fields.fields.size(), 3u);
    EXPECT_EQ(std::get<std::int64_t>(fields.fields[0].value), 3);  // i
    EXPECT_EQ(std::get<double>(fields.fields[1].value), 0.001);    // n
    EXPECT_EQ(std::get<std::string>(fields.fields[2].value), "up"); // s
}

TEST(PostBody, StringsThatAreNotFiniteDecimalNumbersStayStrings) {
    const std::vector<std::string> texts = {"abc", "1e999", "-1e999", "inf", "-Infinity", "nan", " 1 ", "1 ", "0x10",
                                            "", "1.2.3", "1e", ".", "-", "1,5", "12abc"};
    std::string body = "[";
    for (std::size_t i = 0; i < texts.size(); ++i)
        body += std::string(i ? "," : "") + R"({"name": "s", "value": ")" + texts[i] + R"("})";
    body += R"(, {"name": "f", "fields": {"x": "inf", "y": "1.5"}}])";
    const PostParseResult result = parseBoth(body);
    ASSERT_TRUE(result.ok) << result.error;
    ASSERT_EQ(result.metrics.size(), texts.size() + 1);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const auto* text = std::get_if<std::string>(&result.metrics[i].fields[0].value);
        ASSERT_NE(text, nullptr) << "\"" << texts[i] << "\" became a number";
        EXPECT_EQ(*text, texts[i]);
    }
    EXPECT_EQ(std::get<std::string>(result.metrics.back().fields[0].value), "inf");
    EXPECT_EQ(std::get<double>(result.metrics.back().fields[1].value), 1.5);
}

TEST(PostBody, TagValuesAreLeftAsSentForTheBusToTidy) {
    const PostParseResult result = parseBoth(R"([{"name": "t", "value": 1, "tags": {"role": " web server 1 ", "n": "12.50"}}])");
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(*result.metrics.at(0).findTag("role"), " web server 1 ");
    EXPECT_EQ(*result.metrics.at(0).findTag("n"), "12.50"); // a tag is text: no number conversion
}

TEST(PostBody, EntriesWithNullValuesAreSkippedAndCountedAndTheRestIsTaken) {
    const PostParseResult result = parseBoth(
        R"([{"name": "a", "value": null}, {"name": "b", "value": 1},
            {"name": "c", "fields": null}, {"name": "d", "fields": {"x": null, "y": null}},
            {"name": "e", "fields": {"x": null, "y": "2.5", "z": true}, "tags": {"k": "v"}},
            {"name": "f", "value": null, "timestamp": 1700000000, "tags": {"k": "v"}}])");
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.skipped, 4u);
    ASSERT_EQ(result.metrics.size(), 2u);
    EXPECT_EQ(result.metrics[0].name, "RUN.b");
    EXPECT_EQ(std::get<std::int64_t>(result.metrics[0].fields.at(0).value), 1);
    const agent::Metric& e = result.metrics[1];
    EXPECT_EQ(e.name, "RUN.e");
    EXPECT_EQ(*e.findTag("k"), "v");
    ASSERT_EQ(e.fields.size(), 2u); // the null x is left out
    EXPECT_EQ(e.fields[0].key, "y");
    EXPECT_EQ(std::get<double>(e.fields[0].value), 2.5);
    EXPECT_EQ(e.fields[1].key, "z");

    const PostParseResult allNull = parseBoth(R"([{"name": "a", "value": null}, {"name": "b", "value": null}])");
    ASSERT_TRUE(allNull.ok) << allNull.error;
    EXPECT_TRUE(allNull.metrics.empty());
    EXPECT_EQ(allNull.skipped, 2u);
    EXPECT_EQ(parseBoth(R"([{"name": "b", "value": 1}])").skipped, 0u);
}

TEST(PostBody, ASkippedEntryIsCheckedLikeTheOthers) {
    expectRefused(R"([{"name": "a", "value": null}, {"name": "bad name", "value": null}])",
                  R"(entry 1: name "bad name" does not match [0-9A-Za-z._-]+ (at most 200 characters))");
    expectRefused(R"([{"name": "a", "value": null, "tags": ["x"]}])", "entry 0: tags is a list, not an object");
    expectRefused(R"([{"name": "a", "value": null, "timestamp": "now"}])", "entry 0: timestamp is a string, not a number");
    expectRefused(R"([{"name": "a", "fields": {"bad key": null}}])",
                  R"(entry 0: field name "bad key" does not match [0-9A-Za-z._-]+ (at most 200 characters))");
    expectRefused(R"([{"name": "a", "fields": {}}])", "entry 0: fields is empty");
    // A refused body counts nothing as skipped.
    EXPECT_EQ(parseBoth(R"([{"name": "a", "value": null}, {"name": "b", "value": [1]}])").skipped, 0u);
}
