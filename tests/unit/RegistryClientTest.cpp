// RegistryClient and RegistryPoller against the registry fixture: the protocol of
// docs/ARCHITECTURE.md §9.1, bad answers survived with the last good answer kept, the cache that
// outlives a restart, file:// registries.
#include "RegistryClient.h"
#include "RegistryPoller.h"

#include "RegistryFixture.h"
#include "TestSupport.h"

#include <Poco/JSON/Parser.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

using agent::RegistryAnswer;
using agent::RegistryClient;
using agent::RegistryError;
using agent::test::RegistryFixture;
using agent::test::TempDir;
using agent::test::eventually;

namespace {

agent::HostIdentity host() { return {"web-1", {"10.0.0.1", "10.0.0.2"}, {}}; }

const RegistryFixture::Entry kPlugin = {{"measurement_type", "PLUGIN"},
                                        {"name", "PLUGIN.disk"},
                                        {"git", "git@git.example.com:ops/disk.git"},
                                        {"interval", "60"},
                                        {"parameters", "-v /data"}};

std::string fetchError(const RegistryClient& client) {
    std::vector<std::string> skipped;
    try {
        client.fetch(host(), skipped);
    } catch (const RegistryError& e) {
        return e.what();
    }
    return "no error";
}

agent::RegistryPoller::Options pollerOptions(const std::string& address, const TempDir& dir) {
    agent::RegistryPoller::Options options;
    options.address = address;
    options.cacheFile = dir / "state/registry.json";
    options.version = "test";
    options.timeout = std::chrono::seconds(1);
    options.splay = std::chrono::seconds(0);
    return options;
}

} // namespace

TEST(RegistryClient, AsksForTheHostsNamespacesThenEachNamespacesEntries) {
    RegistryFixture registry;
    registry.setNamespace("ops.web", "17", {kPlugin});
    registry.setNamespace("ops.db", "18", {});
    RegistryClient client(registry.url(), std::chrono::seconds(5));
    std::vector<std::string> skipped;
    const RegistryAnswer answer = client.fetch(host(), skipped);
    EXPECT_TRUE(skipped.empty());
    EXPECT_EQ(answer.namespaces, (std::map<std::string, std::string>{{"ops.db", "18"}, {"ops.web", "17"}}));
    ASSERT_EQ(answer.resources.at("ops.web").size(), 1u);
    EXPECT_EQ(answer.resources.at("ops.web")[0], kPlugin);
    EXPECT_TRUE(answer.resources.at("ops.db").empty());
    ASSERT_EQ(registry.nsRequests().size(), 1u);
    Poco::JSON::Parser parser;
    const auto body = parser.parse(registry.nsRequests()[0]).extract<Poco::JSON::Object::Ptr>();
    EXPECT_EQ(body->getValue<std::string>("hostname"), "web-1");
    EXPECT_EQ(body->getValue<std::string>("ip"), "10.0.0.1,10.0.0.2");
}

TEST(RegistryClient, NamespacesThatWouldEscapeAPathAreSkippedAndSaid) {
    RegistryFixture registry;
    registry.setNamespace("good", "1", {});
    registry.setNamespace("..", "2", {});
    registry.setNamespace("a/b", "3", {});
    RegistryClient client(registry.url(), std::chrono::seconds(5));
    std::vector<std::string> skipped;
    const RegistryAnswer answer = client.fetch(host(), skipped);
    EXPECT_EQ(answer.namespaces.size(), 1u);
    EXPECT_EQ(answer.namespaces.count("good"), 1u);
    EXPECT_EQ(skipped.size(), 2u);
}

TEST(RegistryClient, BadAnswersAreErrorsThatSayWhatWasWrong) {
    RegistryFixture registry;
    RegistryClient client(registry.url(), std::chrono::seconds(1));
    registry.setMode(RegistryFixture::Mode::Http500);
    EXPECT_NE(fetchError(client).find("HTTP 500"), std::string::npos) << fetchError(client);
    registry.setMode(RegistryFixture::Mode::Garbage);
    EXPECT_NE(fetchError(client).find("not JSON"), std::string::npos) << fetchError(client);
    registry.setMode(RegistryFixture::Mode::EnvelopeError);
    EXPECT_NE(fetchError(client).find("httpstatus 500: registry database down"), std::string::npos);
    registry.setMode(RegistryFixture::Mode::Silent);
    EXPECT_NE(fetchError(client).find("POST"), std::string::npos);
    EXPECT_NE(fetchError(RegistryClient("http://127.0.0.1:1", std::chrono::seconds(1))).find("127.0.0.1:1"), std::string::npos);
}

TEST(RegistryClient, ReportCarriesHostnameIpsNamespacesAndVersion) {
    RegistryFixture registry;
    RegistryClient client(registry.url(), std::chrono::seconds(5));
    agent::HostIdentity identity = host();
    identity.namespaces = {"a", "b"};
    client.report(identity, "1.2.3");
    ASSERT_EQ(registry.reports().size(), 1u);
    Poco::JSON::Parser parser;
    const auto body = parser.parse(registry.reports()[0]).extract<Poco::JSON::Object::Ptr>();
    EXPECT_EQ(body->getValue<std::string>("hostname"), "web-1");
    EXPECT_EQ(body->getValue<std::string>("version"), "1.2.3");
    EXPECT_EQ(body->getArray("ns")->size(), 2u);
}

TEST(RegistryClient, FileRegistryHoldsNamespacesAndTheirEntries) {
    TempDir dir;
    RegistryAnswer expected;
    expected.namespaces = {{"ns1", "1"}};
    expected.resources = {{"ns1", {kPlugin}}};
    agent::test::writeFile(dir / "registry.json", RegistryClient::toJson(expected));
    RegistryClient client("file://" + dir / "registry.json", std::chrono::seconds(1));
    std::vector<std::string> skipped;
    EXPECT_EQ(client.fetch(host(), skipped), expected);
    agent::test::writeFile(dir / "registry.json", "{not json");
    EXPECT_NE(fetchError(client).find("not JSON"), std::string::npos);
}

TEST(RegistryPoller, NamespacesFollowTheRegistryAndTheAnswerIsCached) {
    TempDir dir;
    RegistryFixture registry;
    registry.setNamespace("ns1", "1", {kPlugin});
    agent::HostIdentityStore identity(host());
    agent::RegistryPoller poller(pollerOptions(registry.url(), dir), identity, Poco::Logger::get("test.registry"));
    poller.start();
    ASSERT_TRUE(eventually([&] { return identity.get().namespaces == std::vector<std::string>{"ns1"}; }));
    EXPECT_EQ(poller.entries("ns1").size(), 1u);
    EXPECT_TRUE(agent::test::fileExists(dir / "state/registry.json"));
    const std::uint64_t generation = poller.generation();

    registry.setNamespace("ns2", "2", {});
    std::string error;
    ASSERT_TRUE(poller.pollNow(error)) << error;
    EXPECT_EQ(identity.get().namespaces, (std::vector<std::string>{"ns1", "ns2"}));
    EXPECT_GT(poller.generation(), generation);
    poller.stop();
}

TEST(RegistryPoller, FailedPollKeepsTheLastGoodAnswer) {
    TempDir dir;
    RegistryFixture registry;
    registry.setNamespace("ns1", "1", {kPlugin});
    agent::HostIdentityStore identity(host());
    agent::RegistryPoller poller(pollerOptions(registry.url(), dir), identity, Poco::Logger::get("test.registry"));
    poller.start();
    ASSERT_TRUE(eventually([&] { return poller.entries("ns1").size() == 1; }));
    for (RegistryFixture::Mode mode : {RegistryFixture::Mode::Http500, RegistryFixture::Mode::Garbage,
                                       RegistryFixture::Mode::EnvelopeError}) {
        registry.setMode(mode);
        std::string error;
        EXPECT_FALSE(poller.pollNow(error));
        EXPECT_FALSE(error.empty());
        EXPECT_EQ(poller.entries("ns1").size(), 1u);
        EXPECT_EQ(identity.get().namespaces, std::vector<std::string>{"ns1"});
    }
    EXPECT_GE(poller.health()->getValue<Poco::UInt64>("failures"), 3u);
    poller.stop();
}

TEST(RegistryPoller, RestartWithTheRegistryDownStartsFromTheCache) {
    TempDir dir;
    {
        RegistryFixture registry;
        registry.setNamespace("ns1", "1", {kPlugin});
        agent::HostIdentityStore identity(host());
        agent::RegistryPoller poller(pollerOptions(registry.url(), dir), identity, Poco::Logger::get("test.registry"));
        poller.start();
        ASSERT_TRUE(eventually([&] { return agent::test::fileExists(dir / "state/registry.json"); }));
        poller.stop();
    }
    agent::HostIdentityStore identity(host());
    agent::RegistryPoller poller(pollerOptions("http://127.0.0.1:1", dir), identity, Poco::Logger::get("test.registry"));
    poller.start(); // the cache is applied before start() returns
    EXPECT_EQ(identity.get().namespaces, std::vector<std::string>{"ns1"});
    EXPECT_EQ(poller.entries("ns1").size(), 1u);
    poller.stop();
}

TEST(RegistryPoller, StandaloneHostHasNoEntriesAndPollNowSaysWhy) {
    TempDir dir;
    agent::HostIdentityStore identity({"h", {}, {"local"}});
    agent::RegistryPoller poller(pollerOptions("", dir), identity, Poco::Logger::get("test.registry"));
    poller.start();
    std::string error;
    EXPECT_FALSE(poller.pollNow(error));
    EXPECT_EQ(error, "no registry configured ([agent] registryaddr is empty)");
    EXPECT_EQ(identity.get().namespaces, std::vector<std::string>{"local"});
    EXPECT_TRUE(poller.entries("local").empty());
}

// A fleet restarted at once (a package upgrade) must not poll the registry in the same second:
// with a cached answer every poller starts from the cache at once and polls after its own random
// splay, the first poll included.
TEST(RegistryPoller, FirstPollsOfAFleetStartingAtOnceAreSpreadOverTheSplay) {
    RegistryFixture registry;
    registry.setNamespace("ns1", "1", {kPlugin});
    constexpr int kPollers = 20;
    std::vector<std::unique_ptr<TempDir>> dirs;
    std::vector<std::unique_ptr<agent::HostIdentityStore>> identities;
    std::vector<std::unique_ptr<agent::RegistryPoller>> pollers;
    for (int i = 0; i < kPollers; ++i) {
        dirs.push_back(std::make_unique<TempDir>());
        agent::RegistryPoller::Options options = pollerOptions(registry.url(), *dirs.back());
        options.splay = std::chrono::seconds(3);
        identities.push_back(std::make_unique<agent::HostIdentityStore>(host()));
        pollers.push_back(std::make_unique<agent::RegistryPoller>(options, *identities.back(), Poco::Logger::get("test.registry")));
    }
    for (auto& poller : pollers) poller->start();
    // Each poll is three requests (namespaces, entries, report).
    ASSERT_TRUE(eventually([&] { return registry.requestCount() >= 3 * kPollers; }, std::chrono::seconds(20)));
    for (auto& poller : pollers) poller->stop();
    const std::vector<double> times = registry.requestTimes();
    const auto [first, last] = std::minmax_element(times.begin(), times.end());
    // 20 draws from [0, 3 s) all within 1 s of each other: about one chance in a billion.
    EXPECT_GT(*last - *first, 1.0);
    for (const auto& identity : identities) EXPECT_EQ(identity->get().namespaces, std::vector<std::string>{"ns1"});
}
