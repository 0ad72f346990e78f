// Recovery and exact counts (docs/ARCHITECTURE.md §8), with the real agent, api-http and
// sink-influx against a real influxd:
// - a 2,000,000-point backlog, spooled while InfluxDB was down, drains at no less than 0.9x the
//   rate of writing the same points straight to InfluxDB with the same number of connections;
// - SIGKILL of the agent at 10 random moments while a client posts numbered batches (retrying
//   what was not acknowledged) and InfluxDB stalls twice: every acknowledged point arrives;
// - a write that InfluxDB takes only in part: /metrics says exactly what was delivered and what
//   was dropped, and InfluxDB holds the delivered points.
#include "InfluxServer.h"
#include "HttpClient.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <fstream>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;
using Clock = std::chrono::steady_clock;

// Writes in flight at once: the agent's sink-influx `concurrency` and the direct writer's
// connections are the same number.
constexpr int kConnections = 4;
constexpr std::size_t kBatchPoints = 5000; // sink-influx's default batch_size

// One request on a kept-alive session; a broken connection is an answer of status 0.
HttpReply request(Poco::Net::HTTPClientSession& session, const std::string& method, const std::string& uri,
                  const std::string& body = "") {
    try {
        return httpCall(session, method, uri, body);
    } catch (const Poco::Exception&) {
        session.reset();
        return {};
    }
}

HttpReply request(int port, const std::string& method, const std::string& uri, const std::string& body = "") {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(30, 0));
    return request(session, method, uri, body);
}

// A counter of the agent's /metrics for sink-influx, e.g. "agent_sink_points_out_total"; -1
// when the agent does not answer.
std::int64_t sinkCounter(int port, const std::string& name) {
    const HttpReply reply = request(port, "GET", "/metrics");
    if (reply.status != 200) return -1;
    std::istringstream lines(reply.body);
    const std::string prefix = name + "{sink=\"sink-influx\"} ";
    for (std::string line; std::getline(lines, line);)
        if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size()));
    return -1;
}

// `count` points of /post JSON: measurement `name` (RUN.<name> in InfluxDB), tag `b` = `batch`,
// tag `k` = one of 100 series, each point at its own second so that none replaces another.
std::string postBody(const std::string& name, std::size_t batch, std::size_t first, std::size_t count, std::int64_t base) {
    std::string body = "[";
    for (std::size_t i = first; i < first + count; ++i) {
        if (i != first) body += ",";
        body += "{\"name\":\"" + name + "\",\"timestamp\":" + std::to_string(base + static_cast<std::int64_t>(i / 100)) +
                ",\"tags\":{\"b\":\"" + std::to_string(batch) + "\",\"k\":\"s" + std::to_string(i % 100) +
                "\"},\"value\":" + std::to_string(i) + "}";
    }
    return body + "]";
}

// The same points as line protocol, byte for byte as sink-influx writes them (a JSON integer is an
// integer field).
std::string lineBody(const std::string& measurement, std::size_t first, std::size_t count, std::int64_t base) {
    std::string body;
    for (std::size_t i = first; i < first + count; ++i)
        body += measurement + ",b=0,host=test-host,k=s" + std::to_string(i % 100) + " value=" + std::to_string(i) + "i " +
                std::to_string(base + static_cast<std::int64_t>(i / 100)) + "\n";
    return body;
}

std::string agentConfig(const TempDir& dir, const InfluxServer& influx, int port, const std::string& sinkExtra = "") {
    const std::string modules = linkModuleDir(dir, {AGENT_MODULE_DIR "/api-http.so", AGENT_MODULE_DIR "/sink-influx.so"});
    std::string config = writeAgentConfig(dir, modules, "[\"api-http\", \"sink-influx\"]",
                                          "[output]\nretry_initial = 0.2\nretry_max = 1\n"
                                          "[sink-influx]\nurls = [\"" + influx.url() + "\"]\ntimeout = 2\n" + sinkExtra);
    std::string text = readFile(config);
    text.replace(text.find("listen = \"\""), std::string("listen = \"\"").size(),
                 "listen = \"127.0.0.1:" + std::to_string(port) + "\"");
    writeFile(config, text);
    return config;
}

std::string tail(const std::string& text, std::size_t bytes = 6000) {
    return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

// The drain test keeps influxd and the writer (the agent, or the direct writer) on CPUs of their own,
// as they would be on separate hosts: the comparison is then about how busy each writer keeps the
// database, not about whose CPU it takes. Empty when the machine has a single CPU.
std::string databaseCpus() {
    const unsigned cpus = std::thread::hardware_concurrency();
    return cpus < 2 ? "" : cpus == 2 ? "0" : "0-" + std::to_string(cpus - 2);
}
std::string writerCpu() {
    const unsigned cpus = std::thread::hardware_concurrency();
    return cpus < 2 ? "" : std::to_string(cpus - 1);
}

void pinThisThread(const std::string& cpu) {
    if (cpu.empty()) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(std::stoi(cpu), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

class Recovery : public ::testing::Test {
protected:
    void SetUp() override {
        if (!InfluxServer::available()) GTEST_SKIP() << "influxd is not installed (" << InfluxServer::binary() << ")";
        influx_ = std::make_unique<InfluxServer>();
    }
    TempDir dir_;
    std::unique_ptr<InfluxServer> influx_;
};

} // namespace

// Each side gets an influxd of its own, fresh, with nothing else running: the agent's drain into
// one, then the direct writes into another (a restarted influxd that still compacts the other
// side's data would bias the comparison). The database and the writer run on CPUs of their own.
TEST_F(Recovery, ABacklogOfTwoMillionPointsDrainsAsFastAsDirectWrites) {
    constexpr std::size_t kPoints = 2'000'000;
    const std::int64_t base = static_cast<std::int64_t>(std::time(nullptr)) - 30'000;

    // 1. The agent takes the points while InfluxDB is down: all of them wait in its spool.
    InfluxServer::Options pinned;
    pinned.cpus = databaseCpus();
    influx_->stop();
    influx_ = std::make_unique<InfluxServer>(pinned);
    influx_->stop();
    const int port = freePort();
    const std::string config = agentConfig(dir_, *influx_, port, "concurrency = " + std::to_string(kConnections) + "\n");
    std::vector<std::string> command{kAgent, "run", "-f", config};
    if (!writerCpu().empty()) command.insert(command.begin(), {"/usr/bin/taskset", "-c", writerCpu()});
    BackgroundProcess agent(command, dir_.path());
    ASSERT_TRUE(eventually([&] { return sinkCounter(port, "agent_sink_points_in_total") >= 0; })) << agent.err();
    {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(30, 0));
        for (std::size_t first = 0; first < kPoints; first += kBatchPoints) {
            const HttpReply reply = request(session, "POST", "/post?ns=ns1", postBody("drain", 0, first, kBatchPoints, base));
            ASSERT_EQ(reply.status, 200) << reply.body << tail(readFile(dir_ / "log/agent.log"));
        }
    }
    ASSERT_EQ(sinkCounter(port, "agent_sink_points_in_total"), static_cast<std::int64_t>(kPoints));
    ASSERT_EQ(sinkCounter(port, "agent_sink_points_out_total"), 0);

    // 2. InfluxDB comes back: the drain rate runs from the first delivered point to the last.
    influx_->start();
    std::int64_t firstOut = 0;
    Clock::time_point firstAt{};
    double firstCpu = 0;
    ASSERT_TRUE(eventually(
        [&] {
            firstOut = sinkCounter(port, "agent_sink_points_out_total");
            firstAt = Clock::now();
            firstCpu = cpuSeconds(agent.pid());
            return firstOut > 0;
        },
        std::chrono::seconds(60)))
        << tail(readFile(dir_ / "log/agent.log"));
    ASSERT_TRUE(eventually([&] { return sinkCounter(port, "agent_sink_points_out_total") >= static_cast<std::int64_t>(kPoints); },
                           std::chrono::seconds(300)))
        << sinkCounter(port, "agent_sink_points_out_total") << " delivered\n" << tail(readFile(dir_ / "log/agent.log"));
    const double drainSeconds = std::chrono::duration<double>(Clock::now() - firstAt).count();
    const double drainCpu = cpuSeconds(agent.pid()) - firstCpu;
    EXPECT_EQ(influx_->count("ns1", "SELECT count(value) FROM \"RUN.drain\""), static_cast<std::int64_t>(kPoints));
    EXPECT_EQ(sinkCounter(port, "agent_sink_points_dropped_total"), 0);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(20)), 0);
    influx_->stop();

    // 3. The same points straight to a fresh InfluxDB, kConnections writers with kept-alive
    // connections, batches of the sink's size.
    InfluxServer direct(pinned);
    direct.execute("CREATE DATABASE direct");
    std::atomic<std::size_t> nextChunk{0};
    std::atomic<int> directErrors{0};
    const Clock::time_point directStart = Clock::now();
    std::vector<std::thread> writers;
    for (int w = 0; w < kConnections; ++w) {
        writers.emplace_back([&] {
            pinThisThread(writerCpu());
            Poco::Net::HTTPClientSession session("127.0.0.1", direct.httpPort());
            session.setTimeout(Poco::Timespan(30, 0));
            for (std::size_t chunk; (chunk = nextChunk++) * kBatchPoints < kPoints;) {
                const std::string body = lineBody("RUN.drain", chunk * kBatchPoints, kBatchPoints, base);
                if (request(session, "POST", "/write?db=direct&precision=s", body).status != 204) ++directErrors;
            }
        });
    }
    for (std::thread& writer : writers) writer.join();
    const double directSeconds = std::chrono::duration<double>(Clock::now() - directStart).count();
    ASSERT_EQ(directErrors.load(), 0);
    ASSERT_EQ(direct.count("direct", "SELECT count(value) FROM \"RUN.drain\""), static_cast<std::int64_t>(kPoints));

    const double directRate = static_cast<double>(kPoints) / directSeconds;
    const double drainRate = static_cast<double>(kPoints - static_cast<std::size_t>(firstOut)) / drainSeconds;
    std::cout << "[ figures  ] " << kPoints << " points with " << kConnections << " connections: direct "
              << static_cast<long>(directRate) << " points/s, backlog drain " << static_cast<long>(drainRate)
              << " points/s (" << drainRate / directRate << "x); the agent used " << drainCpu << " s of CPU draining ("
              << 1e6 * drainCpu / static_cast<double>(kPoints) << " us per point)\n";
    EXPECT_GE(drainRate, 0.9 * directRate);
}

TEST_F(Recovery, EveryAcknowledgedPointArrivesThroughTenKillsAndTwoStalls) {
    constexpr std::size_t kPointsPerBatch = 1000;
    constexpr int kKills = 10;
    const std::int64_t base = static_cast<std::int64_t>(std::time(nullptr)) - 20'000;
    const int port = freePort();
    const std::string config = agentConfig(dir_, *influx_, port);
    auto agent = std::make_unique<BackgroundProcess>(std::vector<std::string>{kAgent, "run", "-f", config}, dir_.path());

    // The client: numbered batches, each posted until the agent acknowledges it.
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> acknowledged{0};
    std::atomic<std::size_t> refused{0};
    std::thread client([&] {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(10, 0));
        for (std::size_t batch = 0; !stop; ++batch) {
            const std::string body = postBody("chaos", batch, 0, kPointsPerBatch, base);
            while (!stop) {
                const HttpReply reply = request(session, "POST", "/post?ns=ns1", body);
                if (reply.status == 200) {
                    acknowledged = batch + 1;
                    break;
                }
                ++refused; // agent restarting (no answer) or a full spool (503): the same batch again
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            if (stop) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });

    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> pause(1000, 4000);
    for (int kill = 0; kill < kKills; ++kill) {
        std::this_thread::sleep_for(std::chrono::milliseconds(pause(random)));
        if (kill == 2 || kill == 6) influx_->signal(SIGSTOP); // a database that stalls, connections open
        if (kill == 4 || kill == 8) influx_->signal(SIGCONT);
        agent->signal(SIGKILL);
        ASSERT_EQ(agent->wait(std::chrono::seconds(10)), 128 + SIGKILL);
        agent = std::make_unique<BackgroundProcess>(std::vector<std::string>{kAgent, "run", "-f", config}, dir_.path());
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    stop = true;
    client.join();
    const std::size_t batches = acknowledged;
    ASSERT_GT(batches, 20u) << "the client got too few batches through\n" << tail(readFile(dir_ / "log/agent.log"));

    // Everything acknowledged reaches InfluxDB: per batch, all of its points.
    const std::int64_t expected = static_cast<std::int64_t>(batches * kPointsPerBatch);
    auto delivered = [&] {
        try {
            return influx_->count("ns1", "SELECT count(value) FROM \"RUN.chaos\" WHERE b =~ /^[0-9]+$/");
        } catch (const std::exception&) {
            return std::int64_t{-1};
        }
    };
    EXPECT_TRUE(eventually([&] { return delivered() >= expected; }, std::chrono::seconds(120)))
        << delivered() << " of " << expected << "\n" << tail(readFile(dir_ / "log/agent.log"));
    const Poco::JSON::Object::Ptr answer =
        influx_->queryObject("ns1", "SELECT count(value) FROM \"RUN.chaos\" GROUP BY b");
    std::map<std::size_t, std::int64_t> perBatch;
    const Poco::JSON::Array::Ptr series = answer->getArray("results")->getObject(0)->getArray("series");
    ASSERT_TRUE(series);
    for (std::size_t i = 0; i < series->size(); ++i) {
        const Poco::JSON::Object::Ptr one = series->getObject(static_cast<unsigned>(i));
        const std::size_t batch = std::stoul(one->getObject("tags")->getValue<std::string>("b"));
        perBatch[batch] = one->getArray("values")->getArray(0)->get(1).convert<std::int64_t>();
    }
    for (std::size_t batch = 0; batch < batches; ++batch)
        EXPECT_EQ(perBatch[batch], static_cast<std::int64_t>(kPointsPerBatch)) << "batch " << batch;
    std::cout << "[ figures  ] " << batches << " batches (" << batches * kPointsPerBatch << " points) acknowledged, "
              << refused.load() << " posts refused or unanswered and retried, " << kKills << " SIGKILLs, 2 stalls\n";
    agent->signal(SIGTERM);
    EXPECT_EQ(agent->wait(std::chrono::seconds(20)), 0);
}

TEST_F(Recovery, APartialWriteIsCountedExactly) {
    constexpr std::size_t kGood = 40;
    constexpr std::size_t kConflicting = 7;
    const int port = freePort();
    const std::string config = agentConfig(dir_, *influx_, port, "flush_interval = 0\n");
    BackgroundProcess agent({kAgent, "run", "-f", config}, dir_.path());
    ASSERT_TRUE(eventually([&] { return sinkCounter(port, "agent_sink_points_in_total") >= 0; })) << agent.err();

    // RUN.mixed's field `value` becomes a float in the shard of these timestamps (InfluxDB 1.x keeps
    // field types per shard)...
    ASSERT_EQ(request(port, "POST", "/post?ns=ns1", "[{\"name\":\"mixed\",\"timestamp\":1699999000,\"value\":1.5}]").status,
              200);
    ASSERT_TRUE(eventually([&] { return sinkCounter(port, "agent_sink_points_out_total") == 1; }))
        << tail(readFile(dir_ / "log/agent.log"));
    // ...so one write with 40 good points and 7 string values for it is taken only in part.
    std::string body = "[";
    for (std::size_t i = 0; i < kGood; ++i)
        body += (i ? "," : "") + std::string("{\"name\":\"fine\",\"timestamp\":") + std::to_string(1'700'000'000 + i) +
                ",\"value\":" + std::to_string(i) + "}";
    for (std::size_t i = 0; i < kConflicting; ++i)
        body += ",{\"name\":\"mixed\",\"timestamp\":" + std::to_string(1'700'000'000 + i) + ",\"value\":\"text\"}";
    body += "]";
    ASSERT_EQ(request(port, "POST", "/post?ns=ns1", body).status, 200);
    ASSERT_TRUE(eventually([&] {
        return sinkCounter(port, "agent_sink_points_out_total") + sinkCounter(port, "agent_sink_points_dropped_total") >=
               static_cast<std::int64_t>(1 + kGood + kConflicting);
    })) << tail(readFile(dir_ / "log/agent.log"));
    EXPECT_EQ(sinkCounter(port, "agent_sink_points_out_total"), static_cast<std::int64_t>(1 + kGood))
        << tail(readFile(dir_ / "log/agent.log"));
    EXPECT_EQ(sinkCounter(port, "agent_sink_points_dropped_total"), static_cast<std::int64_t>(kConflicting));
    EXPECT_EQ(influx_->count("ns1", "SELECT count(value) FROM \"RUN.fine\""), static_cast<std::int64_t>(kGood));
    EXPECT_EQ(influx_->count("ns1", "SELECT count(value) FROM \"RUN.mixed\""), 1);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(20)), 0);
}
