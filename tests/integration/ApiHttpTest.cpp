// The HTTP API of the real agent (api-http), with real HTTP clients: push with /post, the core's
// routes, the plugin routes against a registry fixture and a git plugin, the token, error
// statuses, unix sockets (listen = "unix:..." and [api-http] socket next to the TCP port), and an
// agent without sinks.
#include "GitServer.h"
#include "RegistryFixture.h"
#include "HttpClient.h"
#include "TestSupport.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>

#include <gtest/gtest.h>

#include <csignal>
#include <algorithm>
#include <cerrno>
#include <future>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;

// What lstat says is at `path`: S_IFSOCK, S_IFLNK, ... with the permission bits; 0 when nothing is.
mode_t fileMode(const std::string& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0 ? info.st_mode : 0;
}

bool isSocket(const std::string& path) { return S_ISSOCK(fileMode(path)); }

// A socket file that nobody accepts on, as a killed agent leaves it.
void makeStaleSocket(const std::string& path) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, path));
    socket.close();
}

// An agent with api-http (and the modules in `load`) on 127.0.0.1:`port` and no registry, git or
// plugins: for the tests that need neither.
std::string plainConfig(const TempDir& dir, const std::string& load, const std::string& apiSection) {
    return writeAgentConfig(dir, AGENT_MODULE_DIR, load,
                            "[api-http]\n" + apiSection + "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n");
}

std::string agentOutput(const TempDir& dir, const CommandResult& result) {
    return result.out + result.err + readFile(dir / "log/agent.log");
}

class ApiHttpTest : public testing::Test {
protected:
    // `more` are registry entries besides the plugins disk and slow (whose repositories the test makes).
    void startAgent(const std::string& listen, const std::string& apiSection, bool withExec = true,
                    std::vector<RegistryFixture::Entry> more = {}) {
        git_.createRepo("ops/disk", "#!/bin/sh\necho '[{\"name\": \"used\", \"value\": 42}]'\n");
        git_.createRepo("ops/slow", "#!/bin/sh\nsleep 2\necho '[]'\n");
        more.push_back(RegistryFixture::pluginEntry("disk", "git@git.example.com:ops/disk.git", "0"));
        more.push_back(RegistryFixture::pluginEntry("slow", "git@git.example.com:ops/slow.git", "0"));
        registry_.setNamespace("ops", "1", std::move(more));
        const std::string load = withExec ? "[\"api-http\", \"source-exec\", \"sink-file\"]" : "[\"api-http\", \"sink-file\"]";
        const std::string config = writeAgentConfig(
            dir_, AGENT_MODULE_DIR, load,
            "[api-http]\n" + apiSection + (withExec ? "[source-exec]\ninterval = 1\nclone_splay = 0\n" : "") +
                "[sink-file]\npath = \"" + dir_ / "metrics.lp" + "\"\n",
            "registryaddr = \"" + registry_.url() + "\"\npluginsuser = \"nobody\"\n"
            "git = \"" + git_.fileUrlTemplate() + "\"\n");
        agent_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{kAgent, "run", "-f", config, "-Dagent.listen=" + listen}, dir_.path());
        ASSERT_TRUE(eventually([&] { return contains(readFile(dir_ / "log/agent.log"), "started: pid") || !agent_->running(); },
                               std::chrono::seconds(30)) && agent_->running())
            << readFile(dir_ / "log/agent.log") << agent_->err();
    }
    void TearDown() override { stopAgent(); }
    void stopAgent() {
        if (!agent_) return;
        agent_->signal(SIGTERM);
        EXPECT_EQ(agent_->wait(std::chrono::seconds(15)), 0) << readFile(dir_ / "log/agent.log");
        agent_.reset();
    }

    TempDir dir_;
    GitServer git_;
    RegistryFixture registry_;
    std::unique_ptr<BackgroundProcess> agent_;
};

} // namespace

TEST_F(ApiHttpTest, PostedPointsReachTheSinkAsRunMetrics) {
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "", false);
    const HttpReply posted = httpCall(port, "POST", "/post?ns=ops", R"([{"name": "x", "value": 1, "tags": {"k": "v"}}])");
    EXPECT_EQ(posted.status, 200) << posted.body;
    EXPECT_EQ(posted.body, R"({"accepted":1})");
    // One namespace: ns may be left out.
    EXPECT_EQ(httpCall(port, "POST", "/post", R"([{"name": "y", "value": 2.5}])").status, 200);
    EXPECT_TRUE(eventually([&] { return contains(readFile(dir_ / "metrics.lp"), "RUN.y,ns=ops,host=test-host value=2.5 "); }))
        << readFile(dir_ / "metrics.lp");
    EXPECT_TRUE(contains(readFile(dir_ / "metrics.lp"), "RUN.x,ns=ops,host=test-host,k=v value=1i "));
}

TEST_F(ApiHttpTest, BadRequestsGetJsonErrorsWithTheRightStatus) {
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "max_body_bytes = 2048\n", false);
    const HttpReply badNs = httpCall(port, "POST", "/post?ns=..%2Fetc", "[]");
    EXPECT_EQ(badNs.status, 400);
    EXPECT_TRUE(contains(badNs.body, "\"error\":")) << badNs.body;
    EXPECT_EQ(httpCall(port, "POST", "/post?ns=" + std::string(129, 'a'), "[]").status, 400);
    const HttpReply badBody = httpCall(port, "POST", "/post?ns=ops", R"([{"name": "ok", "value": 1}, {"name": "bad name", "value": 1}])");
    EXPECT_EQ(badBody.status, 400);
    EXPECT_TRUE(contains(badBody.body, "\"error\":")) << badBody.body;
    EXPECT_EQ(httpCall(port, "GET", "/post?ns=ops").status, 405);
    EXPECT_EQ(httpCall(port, "POST", "/post?ns=ops", std::string(4096, ' ')).status, 413);
    const HttpReply missing = httpCall(port, "GET", "/plugins/list");
    EXPECT_EQ(missing.status, 404);
    EXPECT_TRUE(contains(missing.body, "source-exec")) << missing.body;
    EXPECT_EQ(httpCall(port, "GET", "/nowhere").status, 404);
    // Nothing of the refused bodies was taken.
    EXPECT_FALSE(contains(readFile(dir_ / "metrics.lp"), "RUN.ok"));
}

TEST_F(ApiHttpTest, CoreRoutesAnswerStatusNamespacesAndPrometheusMetrics) {
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "", false);
    EXPECT_EQ(httpCall(port, "GET", "/healthz").status, 200);
    const HttpReply ns = httpCall(port, "GET", "/me/ns");
    EXPECT_EQ(ns.status, 200);
    EXPECT_EQ(ns.body, R"(["ops"])");
    const HttpReply status = httpCall(port, "GET", "/me/status");
    EXPECT_TRUE(contains(status.body, "\"hostname\":\"test-host\"")) << status.body;
    EXPECT_TRUE(contains(status.body, "\"sink-file\"")) << status.body;
    EXPECT_EQ(httpCall(port, "POST", "/update").status, 200);
    httpCall(port, "POST", "/post?ns=ops", R"([{"name": "x", "value": 1}])");
    const HttpReply metrics = httpCall(port, "GET", "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_TRUE(contains(metrics.body, "# TYPE agent_sink_points_in_total counter\n")) << metrics.body;
    EXPECT_TRUE(contains(metrics.body, "agent_sink_points_in_total{sink=\"sink-file\"} 1\n")) << metrics.body;
    EXPECT_TRUE(contains(metrics.body, "agent_http_requests_total{route=\"/post\",status=\"200\"} 1\n")) << metrics.body;
}

TEST_F(ApiHttpTest, TokenGuardsEveryRouteButHealthz) {
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "token = \"s3cret\"\n", false);
    EXPECT_EQ(httpCall(port, "GET", "/healthz").status, 200);
    EXPECT_EQ(httpCall(port, "GET", "/me/ns").status, 401);
    EXPECT_EQ(httpCall(port, "GET", "/me/ns", "", "wrong").status, 401);
    EXPECT_EQ(httpCall(port, "GET", "/me/ns", "", "s3cret").status, 200);
    EXPECT_EQ(httpCall(port, "POST", "/post?ns=ops", R"([{"name": "x", "value": 1}])").status, 401);
}

TEST_F(ApiHttpTest, PluginRoutesListRunDisableEnableAndUpdate) {
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "");
    ASSERT_TRUE(eventually([&] { return contains(httpCall(port, "GET", "/plugins/list").body, "\"project\":\"disk\""); },
                           std::chrono::seconds(30)));
    ASSERT_TRUE(eventually([&] { return fileExists(dir_ / "plugins/ops/disk/plugin"); }, std::chrono::seconds(30)));
    const HttpReply run = httpCall(port, "POST", "/plugins/run?ns=ops&repo=disk&timeout=5");
    EXPECT_EQ(run.status, 200) << run.body;
    EXPECT_TRUE(contains(run.body, "\"result\":\"ok\"")) << run.body;
    EXPECT_TRUE(contains(run.body, "used")) << run.body;
    const HttpReply byAddress = httpCall(port, "POST", "/plugins/run?ns=ops&repo=git%40git.example.com%3Aops%2Fdisk.git");
    EXPECT_EQ(byAddress.status, 200) << byAddress.body;

    const HttpReply disabled = httpCall(port, "POST", "/plugins/disable?ns=ops&repo=disk");
    EXPECT_TRUE(contains(disabled.body, "\"enabled\":false")) << disabled.body;
    EXPECT_TRUE(contains(httpCall(port, "GET", "/plugins/list?ns=ops").body, "\"enabled\":false"));
    EXPECT_TRUE(contains(httpCall(port, "POST", "/plugins/enable?ns=ops&repo=disk").body, "\"enabled\":true"));
    EXPECT_EQ(httpCall(port, "POST", "/plugins/update?ns=ops&repo=disk").status, 200);

    EXPECT_EQ(httpCall(port, "POST", "/plugins/run?ns=ops&repo=nope").status, 404);
    EXPECT_EQ(httpCall(port, "POST", "/plugins/run?ns=..&repo=disk").status, 400);
    EXPECT_EQ(httpCall(port, "POST", "/plugins/run?ns=ops").status, 400);
    EXPECT_EQ(httpCall(port, "POST", "/plugins/run?ns=ops&repo=disk&timeout=abc").status, 400);
}

TEST_F(ApiHttpTest, RunOfARunningPluginIsRefusedWith409) {
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "");
    ASSERT_TRUE(eventually([&] { return fileExists(dir_ / "plugins/ops/slow/plugin"); }, std::chrono::seconds(30)));
    auto first = std::async(std::launch::async, [port] { return httpCall(port, "POST", "/plugins/run?ns=ops&repo=slow"); });
    ASSERT_TRUE(eventually([&] { return contains(httpCall(port, "GET", "/plugins/list").body, "\"running\":true"); }));
    const HttpReply second = httpCall(port, "POST", "/plugins/run?ns=ops&repo=slow");
    EXPECT_EQ(second.status, 409);
    EXPECT_TRUE(contains(second.body, "plugin is running")) << second.body;
    EXPECT_EQ(first.get().status, 200);
}

// /plugins/run and /plugins/update wait for a run or a clone: at most 4 such requests are answered
// at once (kSlowRequestsAtOnce), the rest are refused at once with Retry-After instead of holding
// the server's threads, and /post is answered meanwhile.
TEST_F(ApiHttpTest, SlowRequestsBeyondTheirShareAreRefusedWithRetryAfterWhilePostsGoOn) {
    constexpr int kRuns = 10;
    std::vector<RegistryFixture::Entry> sleepers;
    for (int i = 0; i < kRuns; ++i) {
        const std::string name = "sleep" + std::to_string(i);
        git_.createRepo("ops/" + name, "#!/bin/sh\nsleep 6\necho '[]'\n");
        sleepers.push_back(RegistryFixture::pluginEntry(name, "git@git.example.com:ops/" + name + ".git", "0"));
    }
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "", true, sleepers);
    for (int i = 0; i < kRuns; ++i)
        ASSERT_TRUE(eventually([&] { return fileExists(dir_ / ("plugins/ops/sleep" + std::to_string(i) + "/plugin")); },
                               std::chrono::seconds(60)));

    std::vector<std::future<HttpReply>> runs;
    for (int i = 0; i < kRuns; ++i)
        runs.push_back(std::async(std::launch::async, [port, i] {
            return httpCall(port, "POST", "/plugins/run?ns=ops&timeout=20&repo=sleep" + std::to_string(i));
        }));
    ASSERT_TRUE(eventually([&] { return contains(httpCall(port, "GET", "/plugins/list").body, "\"running\":true"); }));
    const HttpReply posted = httpCall(port, "POST", "/post?ns=ops", R"([{"name": "during", "value": 1}])");
    EXPECT_EQ(posted.status, 200) << posted.body;
    EXPECT_EQ(httpCall(port, "GET", "/metrics").status, 200);

    int answered = 0;
    int refused = 0;
    for (std::future<HttpReply>& run : runs) {
        const HttpReply reply = run.get();
        if (reply.status == 200) {
            ++answered;
            EXPECT_TRUE(contains(reply.body, "\"result\":\"ok\"")) << reply.body;
        } else {
            ++refused;
            EXPECT_EQ(reply.status, 503) << reply.body;
            EXPECT_EQ(reply.retryAfter, "1");
            EXPECT_TRUE(contains(reply.body, "already answering 4 slow requests")) << reply.body;
        }
    }
    EXPECT_EQ(answered, 4);
    EXPECT_EQ(refused, kRuns - 4);
    // The places are free again.
    EXPECT_EQ(httpCall(port, "POST", "/plugins/run?ns=ops&repo=disk").status, 200);
}

TEST_F(ApiHttpTest, UnixSocketServesTheSameRoutes) {
    const std::string socketPath = dir_ / "agent.sock";
    startAgent("unix:" + socketPath, "", false);
    Poco::Net::StreamSocket socket(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, socketPath));
    Poco::Net::HTTPClientSession session(socket);
    EXPECT_EQ(httpCall(session, "GET", "/healthz").status, 200);
}

TEST_F(ApiHttpTest, AThousandClientsPostingAtOnceAreAllAnswered) {
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "", false);
    constexpr int kClients = 1000;
    std::vector<int> statuses(kClients, 0);
    std::vector<std::thread> clients;
    clients.reserve(kClients);
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back([&statuses, i, port] {
            try {
                statuses[static_cast<std::size_t>(i)] =
                    httpCall(port, "POST", "/post?ns=ops", "[{\"name\": \"c\", \"value\": " + std::to_string(i) + "}]").status;
            } catch (const std::exception&) {
                statuses[static_cast<std::size_t>(i)] = -1;
            }
        });
    }
    for (std::thread& client : clients) client.join();
    EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), kClients);
    EXPECT_TRUE(contains(httpCall(port, "GET", "/metrics").body, "agent_sink_points_in_total{sink=\"sink-file\"} 1000\n"));
}

TEST_F(ApiHttpTest, MetricsPassPromtoolCheck) {
    if (!fileExists("/usr/bin/promtool")) GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
    const int port = freePort();
    startAgent("127.0.0.1:" + std::to_string(port), "", false);
    httpCall(port, "POST", "/post?ns=ops", R"([{"name": "x", "value": 1}])");
    httpCall(port, "GET", "/nowhere");
    writeFile(dir_ / "metrics.txt", httpCall(port, "GET", "/metrics").body);
    const CommandResult check =
        runCommand({"/usr/bin/promtool", "check", "metrics"}, {}, std::chrono::seconds(60), {}, dir_ / "metrics.txt");
    EXPECT_EQ(check.exitCode, 0) << check.out << check.err << readFile(dir_ / "metrics.txt");
}

TEST(ApiHttp, FullSpoolAnswers503WithRetryAfterAndTakesNothing) {
    TempDir dir;
    const int port = freePort();
    // sink-influx towards a port nobody listens on: nothing leaves the 1 MiB spool.
    const std::string config = writeAgentConfig(
        dir, AGENT_MODULE_DIR, "[\"api-http\", \"sink-influx\"]",
        "[output]\nspool_max_bytes = 1048576\nspool_segment_bytes = 65536\nbuffersize = 100\n"
        "[sink-influx]\nurls = [\"http://127.0.0.1:9\"]\n");
    BackgroundProcess agent({kAgent, "run", "-f", config, "-Dagent.listen=127.0.0.1:" + std::to_string(port)}, dir.path());
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "log/agent.log"), "started: pid"); })) << agent.err();
    std::string body = "[";
    for (int i = 0; i < 1000; ++i) body += std::string(i ? "," : "") + "{\"name\": \"fill\", \"tags\": {\"i\": \"" + std::to_string(i) + "\"}, \"value\": 1}";
    body += "]";
    HttpReply reply;
    int accepted = 0;
    for (int i = 0; i < 200 && reply.status != 503; ++i) {
        reply = httpCall(port, "POST", "/post?ns=ops", body);
        if (reply.status == 200) ++accepted;
    }
    ASSERT_EQ(reply.status, 503) << reply.body;
    EXPECT_EQ(reply.retryAfter, "5");
    EXPECT_TRUE(contains(reply.body, "spool full")) << reply.body;
    // Only the accepted bodies are in: nothing was dropped to make room for a /post.
    const std::string metrics = httpCall(port, "GET", "/metrics").body;
    EXPECT_TRUE(contains(metrics, "agent_sink_points_in_total{sink=\"sink-influx\"} " + std::to_string(accepted * 1000) + "\n"))
        << metrics;
    EXPECT_TRUE(contains(metrics, "agent_sink_points_dropped_total{sink=\"sink-influx\"} 0\n")) << metrics;
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0);
}

TEST_F(ApiHttpTest, PostWorksOverTheUnixSocketAndTheTcpPortWithTheSameToken) {
    const int port = freePort();
    const std::string socketPath = dir_ / "api.sock";
    startAgent("127.0.0.1:" + std::to_string(port), "token = \"s3cret\"\nsocket = \"" + socketPath + "\"\n", false);
    ASSERT_TRUE(isSocket(socketPath));
    EXPECT_EQ(fileMode(socketPath) & 07777, 0666u); // socket_mode's default: anyone local, as the loopback port

    EXPECT_EQ(httpCall(port, "POST", "/post?ns=ops", R"([{"name": "tcp", "value": 1}])").status, 401);
    EXPECT_EQ(httpCallUnix(socketPath, "POST", "/post?ns=ops", R"([{"name": "unix", "value": 1}])").status, 401);
    EXPECT_EQ(httpCallUnix(socketPath, "GET", "/me/ns", "", "wrong").status, 401);
    EXPECT_EQ(httpCallUnix(socketPath, "GET", "/healthz").status, 200);

    const HttpReply overTcp = httpCall(port, "POST", "/post?ns=ops", R"([{"name": "tcp", "value": 1}])", "s3cret");
    EXPECT_EQ(overTcp.status, 200) << overTcp.body;
    EXPECT_EQ(overTcp.body, R"({"accepted":1})");
    const HttpReply overSocket = httpCallUnix(socketPath, "POST", "/post?ns=ops", R"([{"name": "unix", "value": 2}])", "s3cret");
    EXPECT_EQ(overSocket.status, 200) << overSocket.body;
    EXPECT_EQ(overSocket.body, R"({"accepted":1})");
    EXPECT_TRUE(eventually([&] {
        const std::string stored = readFile(dir_ / "metrics.lp");
        return contains(stored, "RUN.tcp,ns=ops,host=test-host value=1i ") && contains(stored, "RUN.unix,ns=ops,host=test-host value=2i ");
    })) << readFile(dir_ / "metrics.lp");
    // Only the posts with the token were taken.
    EXPECT_TRUE(contains(httpCall(port, "GET", "/metrics", "", "s3cret").body, "agent_sink_points_in_total{sink=\"sink-file\"} 2\n"));
}

TEST_F(ApiHttpTest, AStaleSocketFileIsReplacedAndTheSocketIsRemovedAtStop) {
    const std::string socketPath = dir_ / "api.sock";
    makeStaleSocket(socketPath);
    ASSERT_TRUE(isSocket(socketPath));
    startAgent("127.0.0.1:" + std::to_string(freePort()), "socket = \"" + socketPath + "\"\nsocket_mode = \"0600\"\n", false);
    EXPECT_EQ(fileMode(socketPath) & 07777, 0600u);
    const HttpReply posted = httpCallUnix(socketPath, "POST", "/post?ns=ops", R"([{"name": "x", "value": 1}])");
    EXPECT_EQ(posted.status, 200) << posted.body;
    stopAgent();
    EXPECT_EQ(fileMode(socketPath), 0u) << "the socket file is still there after the agent stopped";
}

TEST_F(ApiHttpTest, ASymlinkedSocketPathIsServedAtItsTargetAndTheLinkIsKept) {
    // As systemd-tmpfiles sets it up: /run/monitor-agent.sock -> the agent's runtime directory.
    ASSERT_EQ(::mkdir((dir_ / "run").c_str(), 0755), 0);
    const std::string link = dir_ / "monitor-agent.sock";
    ASSERT_EQ(::symlink("run/agent.sock", link.c_str()), 0); // relative to the link's directory
    startAgent("127.0.0.1:" + std::to_string(freePort()), "socket = \"" + link + "\"\n", false);
    EXPECT_TRUE(S_ISLNK(fileMode(link)));
    EXPECT_TRUE(isSocket(dir_ / "run/agent.sock"));
    const HttpReply posted = httpCallUnix(link, "POST", "/post?ns=ops", R"([{"name": "x", "value": 1}])");
    EXPECT_EQ(posted.status, 200) << posted.body;
    stopAgent();
    EXPECT_EQ(fileMode(dir_ / "run/agent.sock"), 0u);
    EXPECT_TRUE(S_ISLNK(fileMode(link))) << "the link belongs to tmpfiles, not to the agent";
}

TEST(ApiHttp, ASocketInUseOrAFileThatIsNoSocketFailsTheStartAndIsLeftAlone) {
    TempDir dir;
    const std::string socketPath = dir / "api.sock";
    const std::string config = plainConfig(dir, "[\"api-http\", \"sink-file\"]", "socket = \"" + socketPath + "\"\n");
    const std::vector<std::string> run = {kAgent, "run", "-f", config, "-Dagent.listen=127.0.0.1:" + std::to_string(freePort())};
    {
        Poco::Net::ServerSocket other(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, socketPath));
        const CommandResult result = runCommand(run, {}, std::chrono::seconds(60));
        EXPECT_NE(result.exitCode, 0);
        EXPECT_TRUE(contains(agentOutput(dir, result), "the socket " + socketPath + " is in use by another process"))
            << agentOutput(dir, result);
        EXPECT_TRUE(isSocket(socketPath)) << "the other process's socket was removed";
    }
    ASSERT_EQ(::unlink(socketPath.c_str()), 0);
    writeFile(socketPath, "not a socket\n");
    const CommandResult result = runCommand(run, {}, std::chrono::seconds(60));
    EXPECT_NE(result.exitCode, 0);
    EXPECT_TRUE(contains(agentOutput(dir, result), socketPath + " exists and is not a socket")) << agentOutput(dir, result);
    EXPECT_EQ(readFile(socketPath), "not a socket\n");
}

TEST(ApiHttp, ABadSocketModeIsAConfigErrorNamingTheKey) {
    TempDir dir;
    const std::string config = plainConfig(dir, "[\"api-http\", \"sink-file\"]", "socket = \"" + dir / "api.sock" + "\"\n");
    for (const std::string mode : {"0999", "1777", "rw", "-1"}) {
        const CommandResult check = runCommand({kAgent, "check", "-f", config, "-Dagent.listen=127.0.0.1:1", "-Dapi-http.socket_mode=" + mode});
        EXPECT_EQ(check.exitCode, 1) << mode << ": " << check.out << check.err;
        EXPECT_TRUE(contains(check.out, "[api-http] socket_mode: \"" + mode + "\" is not an octal mode")) << check.out << check.err;
    }
}

TEST(ApiHttp, AnAgentWithoutSinksStartsAndRefusesPostsWith503) {
    TempDir dir;
    const int port = freePort();
    const std::string config = writeAgentConfig(dir, AGENT_MODULE_DIR, "[\"api-http\"]", "");
    BackgroundProcess agent({kAgent, "run", "-f", config, "-Dagent.listen=127.0.0.1:" + std::to_string(port)}, dir.path());
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "log/agent.log"), "started: pid") || !agent.running(); },
                           std::chrono::seconds(30)) && agent.running())
        << readFile(dir / "log/agent.log") << agent.err();
    EXPECT_EQ(httpCall(port, "GET", "/healthz").status, 200);
    const HttpReply posted = httpCall(port, "POST", "/post?ns=ops", R"([{"name": "x", "value": 1}])");
    EXPECT_EQ(posted.status, 503);
    EXPECT_EQ(posted.body, R"({"error":"no sink is loaded: this agent stores no metrics"})");
    EXPECT_EQ(posted.retryAfter, "") << "retrying does not help: no Retry-After";
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << readFile(dir / "log/agent.log");
}
