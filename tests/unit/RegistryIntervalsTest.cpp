// The SDK's reading of the registry's intervals for the host's collectors (agent/RegistryIntervals.h),
// which source-host (CPU, MEM, DISK, FS) and source-netif (NET) share.
#include <agent/RegistryIntervals.h>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

using agent::NamespaceEntries;
using agent::registryIntervals;

namespace {

agent::Registry::Entry entry(const std::string& type, const std::string& interval) {
    return {{"measurement_type", type}, {"interval", interval}};
}

using Intervals = std::map<std::string, std::int64_t>;

} // namespace

TEST(RegistryIntervals, EachTypeAskedForTakesTheShortestIntervalOfEveryNamespace) {
    std::vector<std::string> problems;
    EXPECT_EQ(registryIntervals({}, {"NET"}, 86400, problems), Intervals{});
    const std::vector<NamespaceEntries> namespaces = {
        {"ops", {entry("NET", "30"), entry("CPU", "1"), entry("MEM", "60"), entry("PLUGIN", "5")}},
        {"web", {entry("NET", "5"), entry("MEM", "20"), {{"measurement_type", "DISK"}}}},
    };
    EXPECT_EQ(registryIntervals(namespaces, {"NET"}, 86400, problems), (Intervals{{"NET", 5}}));
    EXPECT_EQ(registryIntervals(namespaces, {"CPU", "MEM", "DISK", "FS"}, 86400, problems),
              (Intervals{{"CPU", 1}, {"MEM", 20}}))
        << "other types time other modules; an entry without an interval sets none";
    EXPECT_TRUE(problems.empty());
}

TEST(RegistryIntervals, AnIntervalThatIsNotWholeSecondsInRangeIsIgnoredAndNamed) {
    std::vector<std::string> problems;
    const std::vector<NamespaceEntries> namespaces = {
        {"db", {entry("NET", "soon"), entry("NET", "0"), entry("NET", "86401"), entry("NET", "2 "), entry("NET", "-3"),
                entry("NET", "7s"), entry("NET", "45")}},
        {"ops", {entry("CPU", "ten")}},
    };
    EXPECT_EQ(registryIntervals(namespaces, {"NET"}, 86400, problems), (Intervals{{"NET", 45}}));
    ASSERT_EQ(problems.size(), 6u);
    EXPECT_EQ(problems[0], "registry entry NET of namespace db: interval \"soon\" is not 1 to 86400 seconds; ignored");
    EXPECT_EQ(problems[2], "registry entry NET of namespace db: interval \"86401\" is not 1 to 86400 seconds; ignored");
    EXPECT_NE(problems[3].find("\"2 \""), std::string::npos) << problems[3];

    problems.clear();
    EXPECT_EQ(registryIntervals(namespaces, {"CPU"}, 3600, problems), Intervals{})
        << "only bad values: the section's interval stays";
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_EQ(problems[0], "registry entry CPU of namespace ops: interval \"ten\" is not 1 to 3600 seconds; ignored");
}
