// reporter-argus data: the master's node object, the bodies sent to it, node.json, the health
// files and the retry delays.
#include "ArgusNode.h"
#include "EventLine.h"
#include "HealthDirectory.h"
#include "NodeFile.h"
#include "TestSupport.h"

#include <Poco/File.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

namespace {

using namespace agent::argus;
using agent::test::TempDir;
using agent::test::writeFile;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string problemOf(const std::string& text) {
    try {
        parseMasterNode(text);
    } catch (const ArgusProtocolError& e) {
        return e.what();
    }
    return "";
}

TEST(ArgusNode, MasterNodeGivesItsIdAndIdentity) {
    const MasterNode node = parseMasterNode(
        R"({"id": "A7", "name": "h", "meta_data": {"env": "dev", "user": "ann", "instance": "2", "ip": "10.0.0.1"}})");
    EXPECT_EQ(node.id, "A7");
    ASSERT_TRUE(node.identity.has_value());
    EXPECT_EQ(*node.identity, (NodeIdentity{"dev", "ann", "2"}));
}

TEST(ArgusNode, IntegerIdIsTakenInDecimal) { EXPECT_EQ(parseMasterNode(R"({"id": 42})").id, "42"); }

TEST(ArgusNode, NodeWithoutUsableIdIsRefused) {
    EXPECT_TRUE(contains(problemOf(R"({"name": "h"})"), "no id"));
    EXPECT_TRUE(contains(problemOf(R"({"id": ""})"), "empty"));
    EXPECT_TRUE(contains(problemOf(R"({"id": null})"), "neither"));
    EXPECT_TRUE(contains(problemOf(R"({"id": {"x": 1}})"), "neither"));
}

TEST(ArgusNode, GarbageAndNonObjectsAreRefused) {
    for (const std::string bad : {"", "<html>502</html>", "[1,2]", "\"A1\"", "42", "{\"id\": \"A1\"", "null"})
        EXPECT_FALSE(problemOf(bad).empty()) << bad;
}

TEST(ArgusNode, DeepNestingIsRefused) {
    const std::string deep = "{\"id\":\"A1\",\"x\":" + std::string(1000, '[') + std::string(1000, ']') + "}";
    EXPECT_FALSE(problemOf(deep).empty());
}

TEST(ArgusNode, PartialIdentityInTheNodeIsNoIdentity) {
    EXPECT_FALSE(parseMasterNode(R"({"id": "A1", "meta_data": {"env": "dev", "user": "u"}})").identity.has_value());
}

TEST(ArgusNode, RegistrationBodyFollowsTheContract) {
    Registration registration{"", "dev-ann-1", "10.1.2.3", {"dev", "ann", "1"}, "0.1.0", 4, 8ull << 30};
    const Poco::JSON::Object::Ptr fresh = parseJsonObject(registrationBody(registration));
    EXPECT_FALSE(fresh->has("id"));
    EXPECT_EQ(fresh->getValue<std::string>("name"), "dev-ann-1");
    EXPECT_EQ(fresh->getValue<std::string>("type"), "agent");
    EXPECT_EQ(fresh->getValue<std::string>("version"), "0.1.0");
    const Poco::JSON::Object::Ptr meta = fresh->getObject("meta_data");
    ASSERT_TRUE(meta);
    EXPECT_EQ(meta->getValue<std::string>("hostname"), "dev-ann-1");
    EXPECT_EQ(meta->getValue<std::string>("ip"), "10.1.2.3");
    EXPECT_EQ(meta->getValue<std::string>("env"), "dev");
    EXPECT_EQ(meta->getValue<std::string>("user"), "ann");
    EXPECT_EQ(meta->getValue<std::string>("instance"), "1");
    EXPECT_EQ(meta->getValue<int>("cpu_number"), 4);
    EXPECT_EQ(meta->getValue<Poco::UInt64>("memory_in_bytes"), 8ull << 30);

    registration.id = "A9";
    EXPECT_EQ(parseJsonObject(registrationBody(registration))->getValue<std::string>("id"), "A9");
}

TEST(ArgusNode, ReportBodyHasAnIsoTimestampAndTheHealthAsGiven) {
    HealthEntries health;
    health.emplace_back("log-fluentbit", parseJsonObject(R"({"status": "healthy", "z": 1, "a": [1, 2]})"));
    const Poco::JSON::Object::Ptr body = parseJsonObject(reportBody(std::chrono::system_clock::now(), health));
    EXPECT_TRUE(std::regex_match(body->getValue<std::string>("timestamp"),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
    const Poco::JSON::Object::Ptr entry = body->getObject("health")->getObject("log-fluentbit");
    ASSERT_TRUE(entry);
    EXPECT_EQ(toJson(entry), R"({"status":"healthy","z":1,"a":[1,2]})"); // keys in the order written
}

TEST(ArgusNode, IsoTimestampIsUtc) {
    EXPECT_EQ(isoTimestamp(std::chrono::system_clock::from_time_t(0)), "1970-01-01T00:00:00Z");
    EXPECT_EQ(isoTimestamp(std::chrono::system_clock::from_time_t(1700000000)), "2023-11-14T22:13:20Z");
}

TEST(ArgusHealthDirectory, HealthFileNamesArePrefixDashAnythingDotJson) {
    for (const std::string good : {"log-fluentbit.json", "metric-node-exporter.json", "a-.json", "x-y.z.json"})
        EXPECT_TRUE(isHealthFileName(good)) << good;
    for (const std::string bad : {"agent.json", "-x.json", ".log-x.json", "log-x.json.tmp", "log-x.txt", "log-x",
                                  "log.json", "-.json"})
        EXPECT_FALSE(isHealthFileName(bad)) << bad;
}

TEST(ArgusHealthDirectory, EveryObjectFileIsAnEntryUnderItsNameAndBadOnesAreSkippedWithAWarningNamingThem) {
    TempDir dir;
    writeFile(dir / "log-fluentbit.json", R"({"status": "healthy", "timestamp": "2024-01-01T00:00:00Z"})");
    writeFile(dir / "metric-node-exporter.json", R"({"status": "unhealthy", "error": "scrape failed"})");
    writeFile(dir / "metric-broken.json", R"({"status": )");
    writeFile(dir / "metric-list.json", R"(["not", "an", "object"])");
    writeFile(dir / "README.json", R"({"ignored": true})");
    writeFile(dir / "notes.txt", "ignored");
    writeFile(dir / ".log-tmp.json", R"({"hidden": true})");
    Poco::File(dir / "log-dir.json").createDirectories();

    const HealthScan scan = scanHealthDirectory(dir.path());
    ASSERT_EQ(scan.entries.size(), 2u);
    EXPECT_EQ(scan.entries[0].first, "log-fluentbit");
    EXPECT_EQ(scan.entries[0].second->getValue<std::string>("status"), "healthy");
    EXPECT_EQ(scan.entries[1].first, "metric-node-exporter");
    EXPECT_EQ(scan.entries[1].second->getValue<std::string>("error"), "scrape failed");

    ASSERT_EQ(scan.warnings.size(), 3u);
    EXPECT_TRUE(contains(scan.warnings[0], dir / "log-dir.json")) << scan.warnings[0];
    EXPECT_TRUE(contains(scan.warnings[1], dir / "metric-broken.json")) << scan.warnings[1];
    EXPECT_TRUE(contains(scan.warnings[1], "not JSON")) << scan.warnings[1];
    EXPECT_TRUE(contains(scan.warnings[2], dir / "metric-list.json")) << scan.warnings[2];
    EXPECT_TRUE(contains(scan.warnings[2], "not a JSON object")) << scan.warnings[2];
}

TEST(ArgusHealthDirectory, HugeFileIsSkippedAndNamed) {
    TempDir dir;
    HealthLimits limits;
    limits.maxFileBytes = 1024;
    writeFile(dir / "log-huge.json", R"({"pad": ")" + std::string(4096, 'x') + R"("})");
    writeFile(dir / "log-small.json", R"({"ok": true})");
    const HealthScan scan = scanHealthDirectory(dir.path(), limits);
    ASSERT_EQ(scan.entries.size(), 1u);
    EXPECT_EQ(scan.entries[0].first, "log-small");
    ASSERT_EQ(scan.warnings.size(), 1u);
    EXPECT_TRUE(contains(scan.warnings[0], dir / "log-huge.json")) << scan.warnings[0];
    EXPECT_TRUE(contains(scan.warnings[0], "over the cap of 1024")) << scan.warnings[0];
}

TEST(ArgusHealthDirectory, DefaultCapRefusesAFileOfSeveralMegabytes) {
    TempDir dir;
    writeFile(dir / "log-huge.json", R"({"pad": ")" + std::string(8 << 20, 'x') + R"("})");
    const HealthScan scan = scanHealthDirectory(dir.path());
    EXPECT_TRUE(scan.entries.empty());
    EXPECT_EQ(scan.warnings.size(), 1u);
}

TEST(ArgusHealthDirectory, TotalCapStopsTakingFilesOnceReached) {
    TempDir dir;
    HealthLimits limits;
    limits.maxTotalBytes = 100;
    const std::string sixtyBytes = R"({"pad": ")" + std::string(49, 'x') + R"("})";
    writeFile(dir / "a-1.json", sixtyBytes);
    writeFile(dir / "a-2.json", sixtyBytes);
    const HealthScan scan = scanHealthDirectory(dir.path(), limits);
    ASSERT_EQ(scan.entries.size(), 1u);
    EXPECT_EQ(scan.entries[0].first, "a-1");
    ASSERT_EQ(scan.warnings.size(), 1u);
    EXPECT_TRUE(contains(scan.warnings[0], dir / "a-2.json"));
}

TEST(ArgusHealthDirectory, MissingDirectoryIsNoHealth) {
    TempDir dir;
    const HealthScan scan = scanHealthDirectory(dir / "absent");
    EXPECT_TRUE(scan.entries.empty());
    EXPECT_TRUE(scan.warnings.empty());
}

TEST(ArgusNodeFile, SavedNodeLoadsBackAndNoTempFileIsLeft) {
    TempDir dir;
    const MasterNode node = parseMasterNode(R"({"id": "A3", "meta_data": {"env": "e", "user": "u", "instance": "i"}})");
    saveNodeFile(dir / "node.json", node);
    std::string problem;
    const std::optional<MasterNode> loaded = loadNodeFile(dir / "node.json", problem);
    ASSERT_TRUE(loaded.has_value()) << problem;
    EXPECT_EQ(loaded->id, "A3");
    EXPECT_EQ(loaded->identity, node.identity);
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) names.push_back(entry.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"node.json"});
}

TEST(ArgusNodeFile, SavingReplacesTheWholeFile) {
    TempDir dir;
    writeFile(dir / "node.json", R"({"id": "OLD", "padding": ")" + std::string(1000, 'x') + R"("})");
    saveNodeFile(dir / "node.json", parseMasterNode(R"({"id": "NEW"})"));
    std::string problem;
    EXPECT_EQ(loadNodeFile(dir / "node.json", problem)->id, "NEW");
}

TEST(ArgusNodeFile, MissingFileIsNoNodeAndNoProblem) {
    TempDir dir;
    std::string problem;
    EXPECT_FALSE(loadNodeFile(dir / "node.json", problem).has_value());
    EXPECT_TRUE(problem.empty()) << problem;
}

TEST(ArgusNodeFile, GarbageFileIsNoNodeWithAProblemNamingIt) {
    TempDir dir;
    writeFile(dir / "node.json", "{\"id\": ");
    std::string problem;
    EXPECT_FALSE(loadNodeFile(dir / "node.json", problem).has_value());
    EXPECT_TRUE(contains(problem, dir / "node.json")) << problem;
}

TEST(ArgusNodeFile, DirectoryUnderARegularFileIsNotWritable) {
    TempDir dir;
    writeFile(dir / "file", "x");
    EXPECT_THROW(ensureWritableDirectory(dir / "file/root/host"), NodeFileError);
    EXPECT_THROW(saveNodeFile(dir / "file/node.json", parseMasterNode(R"({"id": "A1"})")), NodeFileError);
}

TEST(ArgusNodeFile, WritableDirectoryIsCreatedAndLeftEmpty) {
    TempDir dir;
    ensureWritableDirectory(dir / "root/host/health");
    EXPECT_TRUE(std::filesystem::is_directory(dir / "root/host/health"));
    EXPECT_TRUE(std::filesystem::is_empty(dir / "root/host/health"));
}

TEST(ArgusEventLine, PlainValuesStayBareAndOthersAreQuotedOnOneLine) {
    EXPECT_EQ(EventLine("report").add("result", "ok").add("entries", 3).text(), "event=report result=ok entries=3");
    EXPECT_EQ(EventLine("retry").add("error", "HTTP 500: a=\"b\"\\\nmore").add("empty", "").text(),
              R"(event=retry error="HTTP 500: a=\"b\"\\ more" empty="")");
}

} // namespace
