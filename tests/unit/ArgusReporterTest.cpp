// reporter-argus against the test master (tests/support/ArgusMaster) on loopback: registration,
// reports with the health files, node.json, a forgotten node, an IP change, a master that fails
// in every way, and a prompt stop during a backoff.
#include "ArgusMaster.h"
#include "ArgusReporter.h"
#include "NodeFile.h"
#include "TestSupport.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>

namespace {

using namespace agent::argus;
using agent::test::ArgusMaster;
using agent::test::TempDir;
using agent::test::contains;
using agent::test::eventually;
using agent::test::writeFile;
using std::chrono::milliseconds;

// Keeps every log line, so that a test can read what the reporter said.
class CapturingChannel : public Poco::Channel {
public:
    void log(const Poco::Message& message) override {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.push_back(message.getText());
    }
    std::vector<std::string> lines() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return lines_;
    }
    std::size_t count(const std::string& part) const {
        std::size_t n = 0;
        for (const std::string& line : lines()) n += contains(line, part) ? 1 : 0;
        return n;
    }

private:
    mutable std::mutex mutex_; // guards lines_
    std::vector<std::string> lines_;
};

class ArgusReporterTest : public ::testing::Test {
protected:
    void SetUp() override {
        static std::atomic<int> counter{0};
        logger_ = &Poco::Logger::get("argus-reporter-test-" + std::to_string(++counter));
        logger_->setChannel(log_);
        logger_->setLevel(Poco::Message::PRIO_DEBUG);
        writeFile(root_ / "dev-ann-1/health/log-fluentbit.json", R"({"status": "healthy"})");
        writeFile(root_ / "dev-ann-1/health/metric-node-exporter.json", R"({"status": "unhealthy", "code": 3})");
    }

    ReporterOptions options() const {
        ReporterOptions options;
        options.masterUrl = master_.url();
        options.reportInterval = std::chrono::seconds(60);
        options.hostname = "dev-ann-1";
        options.identity = {"dev", "ann", "1"};
        options.identitySource = "settings";
        options.root = root_.path();
        options.version = "9.9.9";
        options.retryInitial = milliseconds(50);
        options.retryMax = milliseconds(200);
        options.requestTimeout = Poco::Timespan(2, 0);
        return options;
    }

    ReporterHooks hooks() {
        ReporterHooks hooks;
        hooks.currentIp = [this] {
            std::lock_guard<std::mutex> lock(ipMutex_);
            return ip_;
        };
        hooks.agentHealth = [] {
            Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
            health->set("modules", "stub");
            return health;
        };
        hooks.publishHealth = [this](Poco::JSON::Object::Ptr health) {
            std::lock_guard<std::mutex> lock(healthMutex_);
            health_ = std::move(health);
        };
        return hooks;
    }

    std::unique_ptr<ArgusReporter> reporter(ReporterOptions options) {
        return std::make_unique<ArgusReporter>(std::move(options), hooks(), *logger_);
    }
    std::unique_ptr<ArgusReporter> reporter() { return reporter(options()); }

    void setIp(const std::string& ip) {
        std::lock_guard<std::mutex> lock(ipMutex_);
        ip_ = ip;
    }

    std::uint64_t healthCounter(const std::string& key) {
        std::lock_guard<std::mutex> lock(healthMutex_);
        return health_ ? health_->getValue<std::uint64_t>(key) : 0;
    }

    std::string nodeFile() const { return root_ / "dev-ann-1/node.json"; }

    TempDir root_;
    ArgusMaster master_;
    Poco::AutoPtr<CapturingChannel> log_ = new CapturingChannel;
    Poco::Logger* logger_ = nullptr;
    std::mutex ipMutex_; // guards ip_
    std::string ip_ = "10.9.0.1";
    std::mutex healthMutex_; // guards health_
    Poco::JSON::Object::Ptr health_;
};

TEST_F(ArgusReporterTest, RegistersThenReportsEveryHealthFileAndTheAgentEntry) {
    auto argus = reporter();
    EXPECT_EQ(argus->step(), std::chrono::seconds(60));
    ASSERT_TRUE(argus->registered());

    const std::vector<ArgusMaster::Node> nodes = master_.nodes();
    ASSERT_EQ(nodes.size(), 1u);
    const ArgusMaster::Node& node = nodes[0];
    EXPECT_EQ(node.id, argus->nodeId());
    EXPECT_EQ(node.name, "dev-ann-1");
    EXPECT_EQ(node.ip, "10.9.0.1");
    EXPECT_EQ(node.env, "dev");
    EXPECT_EQ(node.user, "ann");
    EXPECT_EQ(node.instance, "1");
    EXPECT_EQ(node.reports, 1);
    ASSERT_TRUE(node.health);
    EXPECT_EQ(node.health->size(), 3u);
    EXPECT_EQ(node.health->getObject("log-fluentbit")->getValue<std::string>("status"), "healthy");
    EXPECT_EQ(node.health->getObject("metric-node-exporter")->getValue<int>("code"), 3);
    EXPECT_EQ(node.health->getObject("agent")->getValue<std::string>("modules"), "stub");

    std::string problem;
    const std::optional<MasterNode> saved = loadNodeFile(nodeFile(), problem);
    ASSERT_TRUE(saved.has_value()) << problem;
    EXPECT_EQ(saved->id, node.id);
    EXPECT_EQ(saved->identity, (NodeIdentity{"dev", "ann", "1"}));

    EXPECT_EQ(log_->count("event=register result=ok status=201 node_id=" + node.id), 1u);
    EXPECT_EQ(log_->count("event=report result=ok status=200 node_id=" + node.id + " health_entries=3"), 1u);
}

TEST_F(ArgusReporterTest, LaterStepsOnlyReport) {
    auto argus = reporter();
    argus->step();
    argus->step();
    argus->step();
    ASSERT_EQ(master_.nodes().size(), 1u);
    EXPECT_EQ(master_.nodes()[0].registrations, 1);
    EXPECT_EQ(master_.nodes()[0].reports, 3);
}

TEST_F(ArgusReporterTest, SavedIdIsSentSoARestartedAgentKeepsItsNode) {
    auto first = reporter();
    first->step();
    const std::string id = first->nodeId();
    first.reset();

    ReporterOptions restarted = options();
    restarted.savedNodeId = id;
    auto second = reporter(restarted);
    second->step();
    EXPECT_EQ(second->nodeId(), id);
    ASSERT_EQ(master_.nodes().size(), 1u);
    EXPECT_EQ(master_.nodes()[0].registrations, 2);
    const std::vector<std::string> bodies = master_.registrationBodies();
    ASSERT_EQ(bodies.size(), 2u);
    EXPECT_FALSE(contains(bodies[0], "\"id\""));
    EXPECT_TRUE(contains(bodies[1], "\"id\":\"" + id + "\"")) << bodies[1];
}

TEST_F(ArgusReporterTest, ForgottenNodeIsRegisteredAgainWithItsIdThenReported) {
    auto argus = reporter();
    argus->step();
    const std::string id = argus->nodeId();
    master_.forget(id);

    EXPECT_EQ(argus->step(), milliseconds(0)); // the report's 404: register again at once
    EXPECT_FALSE(argus->registered());
    EXPECT_EQ(log_->count("event=re-register reason=not_found node_id=" + id), 1u);

    EXPECT_EQ(argus->step(), std::chrono::seconds(60));
    const std::optional<ArgusMaster::Node> node = master_.node(id);
    ASSERT_TRUE(node.has_value());
    EXPECT_EQ(node->reports, 1);
    EXPECT_EQ(master_.nodes().size(), 1u);
    EXPECT_EQ(log_->count("event=register result=ok"), 2u);
}

TEST_F(ArgusReporterTest, IpChangeRegistersAgainWithTheSameIdAndTheNewIp) {
    auto argus = reporter();
    argus->step();
    const std::string id = argus->nodeId();
    setIp("10.9.0.2");
    argus->step();

    ASSERT_EQ(master_.nodes().size(), 1u);
    EXPECT_EQ(master_.nodes()[0].id, id);
    EXPECT_EQ(master_.nodes()[0].ip, "10.9.0.2");
    EXPECT_EQ(master_.nodes()[0].registrations, 2);
    EXPECT_EQ(log_->count("event=re-register reason=ip_changed node_id=" + id + " old_ip=10.9.0.1 new_ip=10.9.0.2"), 1u);
    std::string problem;
    const std::optional<MasterNode> saved = loadNodeFile(nodeFile(), problem);
    ASSERT_TRUE(saved.has_value()) << problem;
    EXPECT_EQ(saved->object->getObject("meta_data")->getValue<std::string>("ip"), "10.9.0.2");
}

TEST_F(ArgusReporterTest, FailingMasterIsRetriedWithGrowingDelaysAndNothingIsSaved) {
    for (const ArgusMaster::Mode mode : {ArgusMaster::Mode::Http500, ArgusMaster::Mode::Garbage, ArgusMaster::Mode::NoId}) {
        master_.setMode(mode);
        auto argus = reporter();
        std::vector<milliseconds> delays;
        for (int i = 0; i < 4; ++i) delays.push_back(argus->step());
        EXPECT_FALSE(argus->registered());
        EXPECT_FALSE(agent::test::fileExists(nodeFile()));
        for (const milliseconds delay : delays) {
            EXPECT_GE(delay, milliseconds(25));
            EXPECT_LE(delay, milliseconds(200));
        }
        EXPECT_GE(delays[3], milliseconds(100)); // 400 ms capped at 200, jittered down to half at most

        master_.setMode(ArgusMaster::Mode::Normal);
        EXPECT_EQ(argus->step(), std::chrono::seconds(60));
        EXPECT_TRUE(argus->registered());
        EXPECT_TRUE(agent::test::fileExists(nodeFile()));
        std::filesystem::remove(nodeFile());
    }
    EXPECT_EQ(log_->count("event=retry action=register attempt=1"), 3u);
    EXPECT_GE(log_->count("error=\"register: HTTP 500"), 1u);
    EXPECT_GE(log_->count("not JSON"), 1u);
    EXPECT_GE(log_->count("the node has no id"), 1u);
}

TEST_F(ArgusReporterTest, MasterDownIsRetriedUntilItComesBack) {
    master_.goDown();
    auto argus = reporter();
    EXPECT_GT(argus->step(), milliseconds(0));
    EXPECT_GT(argus->step(), milliseconds(0));
    EXPECT_FALSE(argus->registered());
    EXPECT_EQ(log_->count("event=retry action=register"), 2u);
    master_.comeUp();
    EXPECT_EQ(argus->step(), std::chrono::seconds(60));
    EXPECT_EQ(master_.nodes().size(), 1u);
}

TEST_F(ArgusReporterTest, FailedReportIsRetriedWithoutRegisteringAgain) {
    auto argus = reporter();
    argus->step();
    master_.setMode(ArgusMaster::Mode::Http500);
    EXPECT_LE(argus->step(), milliseconds(200));
    EXPECT_TRUE(argus->registered());
    EXPECT_EQ(log_->count("event=retry action=report attempt=1"), 1u);
    master_.setMode(ArgusMaster::Mode::Normal);
    EXPECT_EQ(argus->step(), std::chrono::seconds(60));
    EXPECT_EQ(master_.nodes()[0].registrations, 1);
    EXPECT_EQ(master_.nodes()[0].reports, 2);
}

TEST_F(ArgusReporterTest, BadHealthFileIsWarnedAboutOnceAndLeftOut) {
    writeFile(root_ / "dev-ann-1/health/log-broken.json", "{not json");
    auto argus = reporter();
    argus->step();
    argus->step();
    EXPECT_EQ(log_->count("event=health_file_skipped"), 1u);
    EXPECT_EQ(log_->count("log-broken.json"), 1u);
    EXPECT_EQ(master_.nodes()[0].health->size(), 3u);
}

TEST_F(ArgusReporterTest, ThreadRegistersReportsAndPublishesItsHealth) {
    ReporterOptions fast = options();
    fast.reportInterval = std::chrono::seconds(1);
    auto argus = reporter(fast);
    argus->start();
    EXPECT_TRUE(eventually([&] { return master_.reportCount() >= 2; }, std::chrono::seconds(10)));
    argus->stop();
    EXPECT_GE(healthCounter("reports"), 2u);
    EXPECT_EQ(healthCounter("registrations"), 1u);
}

TEST_F(ArgusReporterTest, StopDuringABackoffDoesNotWaitForIt) {
    master_.goDown();
    ReporterOptions slow = options();
    slow.retryInitial = std::chrono::seconds(30);
    slow.retryMax = std::chrono::seconds(30);
    auto argus = reporter(slow);
    argus->start();
    ASSERT_TRUE(eventually([&] { return healthCounter("failures") >= 1; }, std::chrono::seconds(10)));
    const auto before = std::chrono::steady_clock::now();
    argus->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(1));
}

} // namespace
