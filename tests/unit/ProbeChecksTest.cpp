// source-probe's checks: a TCP connect to a listening and to a closed port; processes found by
// their executable in a hand-made /proc and in this machine's.
#include "ProbeChecks.h"

#include "TestSupport.h"

#include <Poco/Net/ServerSocket.h>

#include <gtest/gtest.h>

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
