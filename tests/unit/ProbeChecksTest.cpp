// source-probe's checks: a TCP connect to a listening and to a closed port, many unreachable ports
// checked at once; processes found by their executable in a hand-made /proc and in this machine's.
#include "ProbeChecks.h"

#include "TestSupport.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <unistd.h>

using agent::test::TempDir;

namespace {

// A /proc entry: <root>/<pid>/exe -> exe, and a stat line with the given utime, stime, threads, rss.
void fakeProcess(const TempDir& root, int pid, const std::string& exe, int utime, int stime, int threads, int rssPages) {
    const std::string dir = root / std::to_string(pid);
    agent::test::writeFile(dir + "/stat", std::to_string(pid) + " (my prog) S 1 1 1 0 -1 4194304 1 0 0 0 " +
                                              std::to_string(utime) + " " + std::to_string(stime) + " 0 0 20 0 " +
                                              std::to_string(threads) + " 0 100 12345678 " + std::to_string(rssPages) +
                                              " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
    ASSERT_EQ(symlink(exe.c_str(), (dir + "/exe").c_str()), 0);
}

} // namespace

TEST(ProbeChecks, ConnectSucceedsOnAListeningPortAndFailsOnAClosedOne) {
    Poco::Net::ServerSocket listening(Poco::Net::SocketAddress("127.0.0.1", 0));
    std::string error;
    EXPECT_TRUE(agent::probe::tcpConnect("127.0.0.1", listening.address().port(), std::chrono::seconds(2), error)) << error;
    const int port = listening.address().port();
    listening.close();
    EXPECT_FALSE(agent::probe::tcpConnect("127.0.0.1", port, std::chrono::seconds(2), error));
    EXPECT_NE(error.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << error;
}

// A port that takes no connection and refuses none, as behind a firewall that drops packets: a
// listener with a backlog of 0 whose one queued connection is never accepted. The kernel then
// drops further SYNs, and a connect waits for its timeout.
TEST(ProbeChecks, UnreachablePortsAreCheckedAtOnceSoARoundTakesAboutOneTimeout) {
    Poco::Net::ServerSocket silent;
    silent.bind(Poco::Net::SocketAddress("127.0.0.1", 0));
    silent.listen(0);
    const int silentPort = silent.address().port();
    Poco::Net::StreamSocket queued;
    queued.connect(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(silentPort)));
    Poco::Net::ServerSocket listening(Poco::Net::SocketAddress("127.0.0.1", 0));
    Poco::Net::ServerSocket closing(Poco::Net::SocketAddress("127.0.0.1", 0));
    const int closedPort = closing.address().port();
    closing.close();

    constexpr int kSilent = 30;
    std::vector<agent::probe::PortTarget> targets;
    targets.push_back({"127.0.0.1", listening.address().port(), std::chrono::seconds(1)});
    targets.push_back({"127.0.0.1", closedPort, std::chrono::seconds(1)});
    for (int i = 0; i < kSilent; ++i) targets.push_back({"127.0.0.1", silentPort, std::chrono::seconds(1)});

    const auto started = std::chrono::steady_clock::now();
    const std::vector<agent::probe::PortResult> results = agent::probe::tcpConnectAll(targets);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    ASSERT_EQ(results.size(), targets.size());
    EXPECT_TRUE(results[0].up) << results[0].error;
    EXPECT_FALSE(results[1].up);
    EXPECT_NE(results[1].error.find("refused"), std::string::npos) << results[1].error;
    for (int i = 0; i < kSilent; ++i) {
        EXPECT_FALSE(results[2 + i].up);
        EXPECT_NE(results[2 + i].error.find("no connection within 1000 ms"), std::string::npos) << results[2 + i].error;
    }
    // One after another they would take 30 s; at once, about the one timeout.
    EXPECT_LT(seconds, 10.0) << kSilent << " silent ports took " << seconds << " s";
}

TEST(ProbeChecks, ProcessesAreCountedByExecutableWithTheirUsageSummed) {
    TempDir proc;
    fakeProcess(proc, 100, "/usr/sbin/nginx", 10, 5, 1, 100);
    fakeProcess(proc, 101, "/usr/sbin/nginx (deleted)", 20, 5, 4, 200); // binary replaced by an upgrade
    fakeProcess(proc, 102, "/usr/bin/other", 99, 99, 9, 999);
    agent::test::writeFile(proc / "self/stat", "not a process directory\n");
    agent::test::writeFile(proc / "103/stat", "103 (garbage) S x y z\n"); // no exe link: skipped
    const agent::probe::ProcessUsage usage = agent::probe::scanProcesses(proc.path(), "/usr/sbin/nginx");
    EXPECT_EQ(usage.count, 2u);
    EXPECT_EQ(usage.cpuTicks, 40u);
    EXPECT_EQ(usage.threads, 5u);
    EXPECT_EQ(usage.rssBytes, 300u * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)));
    EXPECT_EQ(agent::probe::scanProcesses(proc.path(), "/usr/bin/none").count, 0u);
}

TEST(ProbeChecks, ThisTestProcessIsFoundInTheRealProc) {
    char self[4096] = {};
    ASSERT_GT(readlink("/proc/self/exe", self, sizeof self - 1), 0);
    const agent::probe::ProcessUsage usage = agent::probe::scanProcesses("/proc", self);
    EXPECT_GE(usage.count, 1u);
    EXPECT_GT(usage.rssBytes, 0u);
    EXPECT_GE(usage.threads, 1u);
}
