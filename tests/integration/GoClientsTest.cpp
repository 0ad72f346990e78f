// What the Go agent's clients send to /post, end to end: the real agent (api-http and sink-influx)
// against a real influxd, checked in InfluxDB as a user of the loda pipeline would. Decimal strings
// are stored as floats (one field type with the numbers posted next to them), other strings as
// strings, tag values tidied as the Go agent did, and null values skipped without refusing the batch.
#include "InfluxServer.h"
#include "HttpClient.h"
#include "TestSupport.h"

#include <Poco/JSON/Array.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <gtest/gtest.h>

#include <csignal>
#include <ctime>
#include <memory>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

class GoClients : public testing::Test {
protected:
    void SetUp() override {
        if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed (" << InfluxServer::binary() << ")";
        influx_ = std::make_unique<InfluxServer>();
        port_ = freePort();
        const std::string config = writeAgentConfig(dir_, AGENT_MODULE_DIR, "[\"api-http\", \"sink-influx\"]",
                                                    "[output]\nretry_initial = 0.2\nretry_max = 1\n"
                                                    "[sink-influx]\nurls = [\"" + influx_->url() + "\"]\n"
                                                    "flush_interval = 0.2\n");
        agent_ = std::make_unique<BackgroundProcess>(
            std::vector<std::string>{kAgent, "run", "-f", config, "-Dagent.listen=127.0.0.1:" + std::to_string(port_)},
            dir_.path());
        ASSERT_TRUE(eventually([&] { return contains(readFile(dir_ / "log/agent.log"), "started: pid") || !agent_->running(); },
                               std::chrono::seconds(30)) && agent_->running())
            << diagnostics();
    }
    void TearDown() override {
        if (!agent_) return;
        agent_->signal(SIGTERM);
        EXPECT_EQ(agent_->wait(std::chrono::seconds(15)), 0) << diagnostics();
    }

    HttpReply post(const std::string& body) { return httpCall(port_, "POST", "/post?ns=ns1", body); }

    // The rows of an InfluxQL answer in the namespace's database; empty while it does not exist yet.
    Poco::JSON::Array::Ptr rows(const std::string& influxql) const {
        try {
            return influx_->rows("ns1", influxql);
        } catch (const std::exception&) {
            return new Poco::JSON::Array;
        }
    }
    std::size_t rowCount(const std::string& influxql) const { return rows(influxql)->size(); }

    // Column `index` of every row, as text.
    std::vector<std::string> column(const std::string& influxql, unsigned index) const {
        std::vector<std::string> values;
        const Poco::JSON::Array::Ptr all = rows(influxql);
        for (unsigned i = 0; i < all->size(); ++i) values.push_back(all->getArray(i)->get(index).toString());
        return values;
    }

    std::string diagnostics() const {
        const std::string log = readFile(dir_ / "log/agent.log");
        return "agent stderr:\n" + agent_->err() + "\nagent.log (tail):\n" + log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
    }

    TempDir dir_;
    std::unique_ptr<InfluxServer> influx_;
    std::unique_ptr<BackgroundProcess> agent_;
    int port_ = 0;
};

const std::int64_t kNow = static_cast<std::int64_t>(std::time(nullptr));

} // namespace

TEST_F(GoClients, ADecimalStringAndANumberAreBothStoredAsFloatsAndOtherStringsAsStrings) {
    // Two points of one series, a second apart, so that neither overwrites the other.
    const HttpReply asString = post(R"([{"name": "price", "value": "12.34", "timestamp": )" + std::to_string(kNow - 2) + "}]");
    EXPECT_EQ(asString.status, 200) << asString.body;
    const HttpReply asNumber = post(R"([{"name": "price", "value": 7.5, "timestamp": )" + std::to_string(kNow - 1) + "}]");
    EXPECT_EQ(asNumber.status, 200) << asNumber.body;
    const HttpReply text = post(R"([{"name": "state", "value": "abc"}])");
    EXPECT_EQ(text.status, 200) << text.body;

    // Had "12.34" been stored as a string, InfluxDB would have refused 7.5 (a field type conflict).
    ASSERT_TRUE(eventually([&] { return rowCount("SELECT value FROM \"RUN.price\"") == 2 && rowCount("SELECT value FROM \"RUN.state\"") == 1; },
                           std::chrono::seconds(60)))
        << diagnostics();
    EXPECT_EQ(column("SHOW FIELD KEYS FROM \"RUN.price\"", 1), std::vector<std::string>{"float"});
    const Poco::JSON::Array::Ptr prices = rows("SELECT value FROM \"RUN.price\"");
    ASSERT_EQ(prices->size(), 2u);
    EXPECT_DOUBLE_EQ(prices->getArray(0)->get(1).convert<double>(), 12.34);
    EXPECT_DOUBLE_EQ(prices->getArray(1)->get(1).convert<double>(), 7.5);
    EXPECT_EQ(column("SHOW FIELD KEYS FROM \"RUN.state\"", 1), std::vector<std::string>{"string"});
    EXPECT_EQ(column("SELECT value FROM \"RUN.state\"", 1), std::vector<std::string>{"abc"});
}

TEST_F(GoClients, TagValuesAreTrimmedWithInnerSpacesAsDashes) {
    const HttpReply posted = post(R"([{"name": "tagged", "value": 1, "tags": {"role": " web server 1 "}}])");
    EXPECT_EQ(posted.status, 200) << posted.body;
    ASSERT_TRUE(eventually([&] { return rowCount("SELECT value FROM \"RUN.tagged\"") == 1; }, std::chrono::seconds(60)))
        << diagnostics();
    EXPECT_EQ(column("SHOW TAG VALUES FROM \"RUN.tagged\" WITH KEY = \"role\"", 1), std::vector<std::string>{"web-server-1"});
}

TEST_F(GoClients, ABatchWithANullValueIsTakenWithoutItAndTheNullIsCounted) {
    const HttpReply posted = post(R"([{"name": "a", "value": null}, {"name": "b", "value": 1}])");
    EXPECT_EQ(posted.status, 200) << posted.body;
    EXPECT_EQ(posted.body, R"({"accepted":1,"skipped":1})");
    ASSERT_TRUE(eventually([&] { return rowCount("SELECT value FROM \"RUN.b\"") == 1; }, std::chrono::seconds(60)))
        << diagnostics();
    EXPECT_EQ(column("SELECT value FROM \"RUN.b\"", 1), std::vector<std::string>{"1"});
    EXPECT_EQ(rowCount("SELECT * FROM \"RUN.a\""), 0u);
    const HttpReply status = httpCall(port_, "GET", "/me/status");
    EXPECT_TRUE(contains(status.body, "\"entries_skipped_null\":1")) << status.body;
}
