// Specification of the plugin manager's git part: which registry addresses give a safe
// <ns>/<project>, clones and updates against real repositories (file://, `git daemon` and a real
// sshd), the atomic switch a running plugin does not notice, real errors (missing branch,
// refused connection, a bad URL), the deadline against every way a peer can hang (silent git://,
// http:// and ssh:// servers, a trickling transfer, a name lookup nobody answers) and the bound
// on concurrent fetches.
#include "GitRepository.h"
#include "GitServer.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using agent::exec::GitFetchLimiter;
using agent::exec::GitRepository;
using agent::exec::GitResult;
using agent::test::contains;
using agent::test::GitServer;
using agent::test::readFile;
using agent::test::SshGitServer;
using agent::test::TempDir;

namespace {

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

bool isExecutable(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IXUSR);
}

double secondsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Git helpers started by this test process (none may outlive an operation). Tests of other
// processes may run helpers at the same time: only our children count.
int helperProcesses() {
    int count = 0;
    DIR* proc = ::opendir("/proc");
    if (!proc) return -1;
    while (const dirent* entry = ::readdir(proc)) {
        if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
        const std::string dir = std::string("/proc/") + entry->d_name;
        const std::string stat = readFile(dir + "/stat");
        // pid (comm) state ppid ...: the parent is the fourth field, after the closing parenthesis.
        const std::size_t close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream fields(stat.substr(close + 1));
        std::string state;
        pid_t parent = 0;
        fields >> state >> parent;
        if (parent == ::getpid() && readFile(dir + "/cmdline").starts_with(AGENT_GIT_HELPER)) ++count;
    }
    ::closedir(proc);
    return count;
}

// HOME for the git helper (which inherits the environment): where its ssh key and known_hosts are.
class ScopedHome {
public:
    explicit ScopedHome(const std::string& home) {
        if (const char* old = std::getenv("HOME")) old_ = old;
        ::setenv("HOME", home.c_str(), 1);
    }
    ~ScopedHome() {
        if (old_.empty())
            ::unsetenv("HOME");
        else
            ::setenv("HOME", old_.c_str(), 1);
    }
    ScopedHome(const ScopedHome&) = delete;
    ScopedHome& operator=(const ScopedHome&) = delete;

private:
    std::string old_;
};

class GitRepositoryTest : public ::testing::Test {
protected:
    GitFetchLimiter limiter_{2, 0ms};
    GitRepository git_{limiter_, AGENT_GIT_HELPER};
    GitServer server_;
    TempDir plugins_;
    std::string target_ = plugins_ / "ns1/demo";
};

} // namespace

TEST_F(GitRepositoryTest, CloneFromFileUrlChecksOutTheReleaseBranchAndPluginIsExecutable) {
    const std::string commit = server_.createRepo("group/demo", "#!/bin/sh\necho release\n");
    const GitResult result = git_.ensure(server_.fileUrl("group/demo"), "", target_, 10s);
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_TRUE(result.changed);
    EXPECT_EQ(result.commit, commit);
    EXPECT_TRUE(isExecutable(target_ + "/plugin"));
    EXPECT_EQ(readFile(target_ + "/plugin"), "#!/bin/sh\necho release\n");
    // <project> is a symlink to the versioned sibling .<project>.<commit12>
    EXPECT_TRUE(fs::is_symlink(target_));
    EXPECT_EQ(fs::read_symlink(target_).string(), ".demo." + commit.substr(0, 12));
    EXPECT_EQ(GitRepository::checkedOutCommit(target_), commit);
}

TEST_F(GitRepositoryTest, CloneThroughGitDaemonWorks) {
    const std::string commit = server_.createRepo("group/demo");
    server_.startDaemon();
    const GitResult result = git_.ensure(server_.daemonUrl("group/demo"), "release", target_, 10s);
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.commit, commit);
    EXPECT_TRUE(isExecutable(target_ + "/plugin"));
}

TEST_F(GitRepositoryTest, CloneWorksWhenTheServersHeadNamesABranchThatDoesNotExist) {
    // Common on servers: the default branch is "master" or "main" and was never pushed; plugins
    // live on "release". Only that branch is fetched, the others are not even transferred.
    const std::string commit = server_.createRepo("group/demo");
    server_.commit("group/demo", "other", "not for plugins\n", "unrelated");
    server_.setHead("group/demo", "refs/heads/master");
    server_.startDaemon();
    for (const std::string& url : {server_.fileUrl("group/demo"), server_.daemonUrl("group/demo")}) {
        const std::string target = plugins_ / ("ns1/demo" + std::to_string(url.size()));
        const GitResult result = git_.ensure(url, "", target, 10s);
        ASSERT_TRUE(result.ok) << url << ": " << result.error;
        EXPECT_EQ(result.commit, commit);
        EXPECT_TRUE(isExecutable(target + "/plugin"));
        EXPECT_FALSE(fs::exists(target + "/other"));
        EXPECT_NE(agent::test::runCommand({"/usr/bin/git", "-C", target, "rev-parse", "--verify", "-q",
                                           "refs/remotes/origin/unrelated"})
                      .exitCode,
                  0)
            << "the unrelated branch was fetched";
    }
}

TEST_F(GitRepositoryTest, EnsureOnAnExistingCheckoutDoesNotFetch) {
    const std::string first = server_.createRepo("group/demo");
    ASSERT_TRUE(git_.ensure(server_.fileUrl("group/demo"), "", target_, 10s).ok);
    server_.commit("group/demo", "plugin", "#!/bin/sh\necho changed\n");
    const GitResult again = git_.ensure(server_.fileUrl("group/demo"), "", target_, 10s);
    ASSERT_TRUE(again.ok) << again.error;
    EXPECT_FALSE(again.changed);
    EXPECT_EQ(again.commit, first);
    EXPECT_EQ(GitRepository::checkedOutCommit(target_), first);
    // Not even a connection is tried: an unreachable address changes nothing.
    const GitResult offline = git_.ensure(
        "git://127.0.0.1:" + std::to_string(agent::test::closedLoopbackPort()) + "/x/y.git", "", target_, 2s);
    EXPECT_TRUE(offline.ok) << offline.error;
}

TEST_F(GitRepositoryTest, UpdateSwitchesAtomicallyAndTheOldDirectoryStaysReadableForARunningPlugin) {
    server_.createRepo("group/demo", "#!/bin/sh\necho old\n");
    server_.startDaemon();
    const std::string url = server_.daemonUrl("group/demo");
    ASSERT_TRUE(git_.ensure(url, "", target_, 10s).ok);
    const std::string oldDir = fs::canonical(target_).string();

    // A "running plugin": a process whose cwd is the checkout, and a file open in it.
    TempDir logs;
    agent::test::BackgroundProcess plugin({"/bin/sleep", "30"}, logs.path(), target_);
    std::ifstream open(target_ + "/plugin");
    ASSERT_TRUE(open.good());

    const std::string next = server_.commit("group/demo", "plugin", "#!/bin/sh\necho new\n");
    const GitResult result = git_.update(url, "", target_, 10s);
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_TRUE(result.changed);
    EXPECT_EQ(result.commit, next);
    EXPECT_EQ(readFile(target_ + "/plugin"), "#!/bin/sh\necho new\n");
    EXPECT_TRUE(isExecutable(target_ + "/plugin"));
    EXPECT_NE(fs::canonical(target_).string(), oldDir);

    std::string oldText((std::istreambuf_iterator<char>(open)), std::istreambuf_iterator<char>());
    EXPECT_EQ(oldText, "#!/bin/sh\necho old\n");
    const std::string cwd = "/proc/" + std::to_string(plugin.pid()) + "/cwd";
    EXPECT_EQ(fs::read_symlink(cwd).string(), oldDir);
    EXPECT_EQ(readFile(cwd + "/plugin"), "#!/bin/sh\necho old\n");

    // The new checkout fetches from the real server on the next update.
    const std::string third = server_.commit("group/demo", "plugin", "#!/bin/sh\necho third\n");
    const GitResult again = git_.update(url, "", target_, 10s);
    ASSERT_TRUE(again.ok) << again.error;
    EXPECT_EQ(again.commit, third);
    // Kept: the current version and the one it replaced (which may be running); older ones go.
    const std::vector<std::string> left = entries(plugins_ / "ns1");
    EXPECT_EQ(left.size(), 3u) << ::testing::PrintToString(left);
    EXPECT_FALSE(fs::exists(oldDir));
}

TEST_F(GitRepositoryTest, UpdateWithNoChangeReportsUnchanged) {
    const std::string commit = server_.createRepo("group/demo");
    ASSERT_TRUE(git_.ensure(server_.fileUrl("group/demo"), "", target_, 10s).ok);
    const std::string dir = fs::canonical(target_).string();
    const GitResult result = git_.update(server_.fileUrl("group/demo"), "", target_, 10s);
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_FALSE(result.changed);
    EXPECT_EQ(result.commit, commit);
    EXPECT_EQ(fs::canonical(target_).string(), dir);
}

TEST_F(GitRepositoryTest, UpdateWithoutACheckoutClones) {
    const std::string commit = server_.createRepo("group/demo");
    const GitResult result = git_.update(server_.fileUrl("group/demo"), "", target_, 10s);
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_TRUE(result.changed);
    EXPECT_EQ(result.commit, commit);
}

TEST_F(GitRepositoryTest, UpdateOfALegacyRealDirectoryMovesItAsideAndKeepsItForARunningPlugin) {
    server_.createRepo("group/demo", "#!/bin/sh\necho old\n");
    const agent::test::CommandResult cloned = agent::test::runCommand(
        {"/usr/bin/git", "clone", "--quiet", "-b", "release", server_.fileUrl("group/demo"), target_});
    ASSERT_EQ(cloned.exitCode, 0) << cloned.err;
    const std::string next = server_.commit("group/demo", "plugin", "#!/bin/sh\necho new\n");
    const GitResult result = git_.update(server_.fileUrl("group/demo"), "", target_, 10s);
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.commit, next);
    EXPECT_TRUE(fs::is_symlink(target_));
    EXPECT_EQ(readFile(target_ + "/plugin"), "#!/bin/sh\necho new\n");
    bool legacyKept = false;
    for (const std::string& name : entries(plugins_ / "ns1"))
        if (name.starts_with(".demo.old-"))
            legacyKept = readFile(plugins_ / ("ns1/" + name + "/plugin")) == "#!/bin/sh\necho old\n";
    EXPECT_TRUE(legacyKept) << ::testing::PrintToString(entries(plugins_ / "ns1"));
}

TEST_F(GitRepositoryTest, MissingReleaseBranchIsAClearErrorAndLeavesNothingInPluginsdir) {
    server_.createRepo("group/demo", "#!/bin/sh\n", "master");
    const GitResult result = git_.ensure(server_.fileUrl("group/demo"), "release", target_, 10s);
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, "branch release not found")) << result.error;
    EXPECT_TRUE(entries(plugins_ / "ns1").empty()) << ::testing::PrintToString(entries(plugins_ / "ns1"));

    server_.startDaemon();
    const GitResult overDaemon = git_.ensure(server_.daemonUrl("group/demo"), "release", target_, 10s);
    EXPECT_FALSE(overDaemon.ok);
    EXPECT_TRUE(contains(overDaemon.error, "branch release not found")) << overDaemon.error;
    EXPECT_TRUE(entries(plugins_ / "ns1").empty());
}

TEST_F(GitRepositoryTest, UpdateOfABranchDeletedOnTheServerIsAnErrorAndKeepsTheCheckout) {
    const std::string commit = server_.createRepo("group/demo");
    ASSERT_TRUE(git_.ensure(server_.fileUrl("group/demo"), "", target_, 10s).ok);
    const GitResult result = git_.update(server_.fileUrl("group/demo"), "stable", target_, 10s);
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, "branch stable not found")) << result.error;
    EXPECT_EQ(GitRepository::checkedOutCommit(target_), commit);
}

TEST_F(GitRepositoryTest, UnreachableServerIsAnErrorWithinTheTimeout) {
    const auto start = std::chrono::steady_clock::now();
    const std::string url = "git://127.0.0.1:" + std::to_string(agent::test::closedLoopbackPort()) + "/group/demo.git";
    const GitResult result = git_.ensure(url, "", target_, 3s);
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, "refused")) << result.error;
    EXPECT_LT(secondsSince(start), 3.0);
    EXPECT_FALSE(fs::exists(fs::symlink_status(target_)));
}

TEST_F(GitRepositoryTest, ServerThatAcceptsButNeverAnswersTimesOutWithinTimeoutPlusTwoSeconds) {
    agent::test::SilentServer silent;
    const std::string url = "git://127.0.0.1:" + std::to_string(silent.port()) + "/group/demo.git";
    auto start = std::chrono::steady_clock::now();
    const GitResult cloned = git_.ensure(url, "", target_, 2s);
    EXPECT_FALSE(cloned.ok);
    EXPECT_TRUE(contains(cloned.error, "timed out")) << cloned.error;
    EXPECT_LT(secondsSince(start), 4.0);
    EXPECT_GE(secondsSince(start), 1.9);
    EXPECT_TRUE(entries(plugins_ / "ns1").empty());

    // The same for the fetch of an update, over http:// too.
    const std::string commit = server_.createRepo("group/demo");
    ASSERT_TRUE(git_.ensure(server_.fileUrl("group/demo"), "", target_, 10s).ok);
    for (const std::string scheme : {"git", "http"}) {
        start = std::chrono::steady_clock::now();
        const std::string hung = scheme + "://127.0.0.1:" + std::to_string(silent.port()) + "/group/demo.git";
        const GitResult updated = git_.update(hung, "", target_, 2s);
        EXPECT_FALSE(updated.ok) << scheme;
        EXPECT_TRUE(contains(updated.error, "timed out")) << updated.error;
        EXPECT_LT(secondsSince(start), 4.0) << scheme;
        EXPECT_EQ(GitRepository::checkedOutCommit(target_), commit);
    }
}

TEST_F(GitRepositoryTest, TransferThatTricklesForeverEndsAtTheDeadlineAndSaysWhereItWas) {
    // Bytes keep coming, so no per-read timeout fires: only the deadline ends it.
    agent::test::TricklingServer trickle;
    const std::string url = "git://127.0.0.1:" + std::to_string(trickle.port()) + "/group/demo.git";
    const auto start = std::chrono::steady_clock::now();
    const GitResult result = git_.ensure(url, "", target_, 2s);
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, "git clone of " + url + ": timed out after 2 s while connecting to " + url))
        << result.error;
    EXPECT_LT(secondsSince(start), 4.0);
    EXPECT_TRUE(entries(plugins_ / "ns1").empty());
    EXPECT_EQ(helperProcesses(), 0);
}

// In a forked child (single-threaded, so it may unshare): a network namespace whose only name
// server, 127.0.0.1:53, is a socket that never answers, and a clone of a URL whose host must be
// looked up there. getaddrinfo() alone would wait 2 x 30 s. Returns "<seconds> <error>", or why
// the setup failed as "setup: ...".
std::string cloneWithSilentNameServer(const std::string& resolvConf, const std::string& target) {
    if (::unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) return std::string("setup: unshare: ") + std::strerror(errno);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount(resolvConf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
        return std::string("setup: mount: ") + std::strerror(errno);
    const int control = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq loopback{};
    std::strcpy(loopback.ifr_name, "lo");
    if (control < 0 || ::ioctl(control, SIOCGIFFLAGS, &loopback) != 0) return "setup: SIOCGIFFLAGS";
    loopback.ifr_flags |= IFF_UP;
    if (::ioctl(control, SIOCSIFFLAGS, &loopback) != 0) return "setup: SIOCSIFFLAGS";
    const int silent = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(53);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (silent < 0 || ::bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        return std::string("setup: bind 127.0.0.1:53: ") + std::strerror(errno);

    GitFetchLimiter limiter(1, 0ms);
    GitRepository git(limiter, AGENT_GIT_HELPER);
    const auto start = std::chrono::steady_clock::now();
    const GitResult result = git.ensure("git://plugins.git.example.com/group/demo.git", "", target, 3s);
    return std::to_string(secondsSince(start)) + " " + (result.ok ? "cloned" : result.error);
}

TEST_F(GitRepositoryTest, NameLookupThatNobodyAnswersEndsAtTheDeadline) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network and mount namespaces)";
    TempDir dir;
    agent::test::writeFile(dir / "resolv.conf", "nameserver 127.0.0.1\noptions timeout:30 attempts:2\n");
    int channel[2];
    ASSERT_EQ(::pipe2(channel, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const std::string said = cloneWithSilentNameServer(dir / "resolv.conf", target_);
        const ssize_t written = ::write(channel[1], said.data(), said.size());
        ::_exit(written == static_cast<ssize_t>(said.size()) ? 0 : 1);
    }
    ::close(channel[1]);
    std::string said;
    char buffer[4096];
    for (ssize_t n; (n = ::read(channel[0], buffer, sizeof buffer)) > 0;)
        said.append(buffer, static_cast<std::size_t>(n));
    ::close(channel[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_FALSE(said.starts_with("setup:")) << said;
    const double seconds = std::stod(said.substr(0, said.find(' ')));
    const std::string error = said.substr(said.find(' ') + 1);
    // The lookup, not anything after it, is what hung; it ended at the deadline.
    EXPECT_TRUE(contains(error, "timed out after 3 s while connecting to git://plugins.git.example.com")) << error;
    EXPECT_GE(seconds, 2.9);
    EXPECT_LT(seconds, 5.0);
    EXPECT_EQ(helperProcesses(), 0);
}

TEST_F(GitRepositoryTest, CloneAndUpdateOverSshWorkAgainstARealSshd) {
    if (const std::string reason = SshGitServer::unavailableReason(); !reason.empty()) GTEST_SKIP() << reason;
    SshGitServer ssh;
    const std::string first = server_.createRepo("group/demo", "#!/bin/sh\necho over ssh\n");
    ssh.share(server_, "group/demo");
    const ScopedHome home(ssh.home());
    const std::string url = ssh.url(server_, "group/demo");
    const GitResult cloned = git_.ensure(url, "", target_, 20s);
    ASSERT_TRUE(cloned.ok) << cloned.error;
    EXPECT_EQ(cloned.commit, first);
    EXPECT_EQ(readFile(target_ + "/plugin"), "#!/bin/sh\necho over ssh\n");

    const std::string second = server_.commit("group/demo", "plugin", "#!/bin/sh\necho updated over ssh\n");
    ssh.share(server_, "group/demo");
    const GitResult updated = git_.update(url, "", target_, 20s);
    ASSERT_TRUE(updated.ok) << updated.error;
    EXPECT_TRUE(updated.changed);
    EXPECT_EQ(updated.commit, second);
    EXPECT_EQ(readFile(target_ + "/plugin"), "#!/bin/sh\necho updated over ssh\n");
    const GitResult again = git_.update(url, "", target_, 20s);
    ASSERT_TRUE(again.ok) << again.error;
    EXPECT_FALSE(again.changed);
}

TEST_F(GitRepositoryTest, SshServerWithAnUnknownOrChangedHostKeyIsRefusedOnEveryLibgit2) {
    if (const std::string reason = SshGitServer::unavailableReason(); !reason.empty()) GTEST_SKIP() << reason;
    SshGitServer ssh;
    server_.createRepo("group/demo");
    ssh.share(server_, "group/demo");
    const ScopedHome home(ssh.home());
    const std::string url = ssh.url(server_, "group/demo");
    const std::string knownHosts = ssh.home() + "/.ssh/known_hosts";
    const std::string where = "[127.0.0.1]:" + std::to_string(ssh.port());

    agent::test::writeFile(knownHosts, "");
    GitResult result = git_.ensure(url, "", target_, 20s);
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, where + " is not in " + knownHosts)) << result.error;

    // Someone else's key for this address: what a man in the middle would present.
    agent::test::writeFile(knownHosts, where + " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIGi+H7VOAsJHqh9HYdP5gdIZw/cbVrohFqXbjelSGjZ\n");
    result = git_.ensure(url, "", target_, 20s);
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, "host key of " + where + " does not match")) << result.error;
    EXPECT_FALSE(fs::exists(fs::symlink_status(target_)));
}

TEST_F(GitRepositoryTest, SshdThatAcceptsAndNeverAnswersEndsAtTheDeadlineForCloneAndFetch) {
    if (const std::string reason = SshGitServer::unavailableReason(); !reason.empty()) GTEST_SKIP() << reason;
    SshGitServer ssh;
    const std::string commit = server_.createRepo("group/demo");
    ssh.share(server_, "group/demo");
    const ScopedHome home(ssh.home());
    const std::string url = ssh.url(server_, "group/demo");
    ASSERT_TRUE(git_.ensure(url, "", target_, 20s).ok);

    ssh.freeze(); // connections complete in the kernel's backlog; sshd never says a word
    auto start = std::chrono::steady_clock::now();
    const GitResult fetched = git_.update(url, "", target_, 2s);
    EXPECT_FALSE(fetched.ok);
    EXPECT_TRUE(contains(fetched.error, "timed out after 2 s")) << fetched.error;
    EXPECT_LT(secondsSince(start), 4.0);
    EXPECT_EQ(GitRepository::checkedOutCommit(target_), commit);

    start = std::chrono::steady_clock::now();
    const GitResult cloned = git_.ensure(url, "", plugins_ / "ns2/demo", 2s);
    EXPECT_FALSE(cloned.ok);
    EXPECT_TRUE(contains(cloned.error, "timed out after 2 s")) << cloned.error;
    EXPECT_LT(secondsSince(start), 4.0);
    EXPECT_TRUE(entries(plugins_ / "ns2").empty());
    EXPECT_EQ(helperProcesses(), 0);
    ssh.thaw();
}

TEST_F(GitRepositoryTest, StopEndsARunningCloneAtOnce) {
    agent::test::SilentServer silent;
    const std::string url = "git://127.0.0.1:" + std::to_string(silent.port()) + "/group/demo.git";
    GitResult result;
    const auto start = std::chrono::steady_clock::now();
    std::thread clone([&] { result = git_.ensure(url, "", target_, 60s); });
    std::this_thread::sleep_for(300ms);
    limiter_.stop();
    clone.join();
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, "agent is stopping")) << result.error;
    EXPECT_LT(secondsSince(start), 2.0);
    EXPECT_TRUE(entries(plugins_ / "ns1").empty());
    EXPECT_EQ(helperProcesses(), 0);
}

TEST_F(GitRepositoryTest, MissingHelperIsAClearError) {
    GitFetchLimiter limiter(1, 0ms);
    GitRepository git(limiter, "/nonexistent/source-exec-git");
    server_.createRepo("group/demo");
    const GitResult result = git.ensure(server_.fileUrl("group/demo"), "", target_, 5s);
    EXPECT_FALSE(result.ok);
    EXPECT_TRUE(contains(result.error, "cannot start the git helper /nonexistent/source-exec-git")) << result.error;
}

TEST_F(GitRepositoryTest, BadUrlIsAnError) {
    for (const std::string url : {"ftp://example.com/group/demo.git", "/nonexistent/group/demo.git", "git://",
                                  "file:///nonexistent/group/demo.git"}) {
        const GitResult result = git_.ensure(url, "", target_, 3s);
        EXPECT_FALSE(result.ok) << url;
        EXPECT_FALSE(result.error.empty()) << url;
        EXPECT_FALSE(fs::exists(fs::symlink_status(target_))) << url;
    }
}

TEST_F(GitRepositoryTest, AtMostNClonesOrFetchesRunAtOnce) {
    // Five clones against a server that never answers, two slots, 1 s timeout: they run in
    // three waves of at most two.
    agent::test::SilentServer silent;
    const std::string url = "git://127.0.0.1:" + std::to_string(silent.port()) + "/group/demo.git";
    std::vector<std::thread> threads;
    std::vector<GitResult> results(5);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i)
        threads.emplace_back(
            [&, i] { results[i] = git_.ensure(url, "", plugins_ / ("ns1/p" + std::to_string(i)), 1s); });
    for (std::thread& t : threads)
        t.join();
    for (const GitResult& r : results)
        EXPECT_FALSE(r.ok);
    EXPECT_EQ(limiter_.peakActive(), 2u);
    EXPECT_EQ(limiter_.active(), 0u);
    EXPECT_GE(secondsSince(start), 2.8);
}

TEST(GitFetchLimiterTest, SplayDelaysEachStartByAtMostTheSplay) {
    GitFetchLimiter limiter(1, 300ms);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(limiter.acquire().has_value());
    EXPECT_LE(secondsSince(start), 1.6);
}

TEST(GitFetchLimiterTest, StopWakesWaitersWithNoSlot) {
    GitFetchLimiter limiter(1, 0ms);
    std::optional<GitFetchLimiter::Slot> held = limiter.acquire();
    ASSERT_TRUE(held);
    bool gotSlot = true;
    std::thread waiter([&] { gotSlot = limiter.acquire().has_value(); });
    std::this_thread::sleep_for(100ms);
    limiter.stop();
    waiter.join();
    EXPECT_FALSE(gotSlot);
}

TEST(GitNamesTest, UnsafeNamesFromRegistryAddressesAreRefused) {
    using agent::exec::isSafeComponent;
    using agent::exec::projectPath;
    EXPECT_TRUE(isSafeComponent("my-plugin_1.2"));
    for (const std::string& bad :
         {std::string(""), std::string("."), std::string(".."), std::string("a/b"), std::string("a b"),
          std::string("a\0b", 3), std::string(129, 'a'), std::string(".hidden")})
        EXPECT_FALSE(isSafeComponent(bad)) << bad;
    EXPECT_TRUE(isSafeComponent(std::string(128, 'a')));

    for (const std::string& address :
         {std::string("git@git.example.com:group/../etc.git"), std::string("git@git.example.com:group/..git"),
          std::string("https://git.example.com/group/..git"), std::string("https://git.example.com/../project.git"),
          std::string("https://git.example.com/group/./project.git"), std::string("/etc/group/project.git"),
          std::string("https://git.example.com/project.git"), std::string("git@git.example.com:group//project.git"),
          std::string("git@git.example.com:group/my project.git"), std::string("https://git.example.com/gr oup/p.git"),
          std::string("git@git.example.com:group/pro\0ject.git", 38), std::string("git@git.example.com:"),
          std::string("ftp://git.example.com/group/project.git"), std::string("https:///group/project.git"),
          std::string("git@git.example.com:group/.project.git"), std::string("")}) {
        std::string error;
        EXPECT_FALSE(projectPath(address, error).has_value()) << address;
        EXPECT_FALSE(error.empty()) << address;
    }
}

TEST(GitNamesTest, ProjectPathAndCloneUrlFollowTheRegistryAddress) {
    using agent::exec::cloneUrl;
    using agent::exec::projectName;
    using agent::exec::projectPath;
    std::string error;
    EXPECT_EQ(projectPath("git@git.example.com:group/project.git", error), "group/project");
    EXPECT_EQ(projectPath("https://git.example.com/group/project.git", error), "group/project");
    EXPECT_EQ(projectPath("https://git.example.com/group/project", error), "group/project");
    EXPECT_EQ(projectPath("ssh://git@git.example.com:2222/group/project.git", error), "group/project");
    EXPECT_EQ(projectPath("git://127.0.0.1:9418/group/project.git/", error), "group/project");
    EXPECT_EQ(projectPath("file:///srv/git/group/project.git", error), "group/project");
    EXPECT_EQ(projectPath("https://gitlab.example.com/top/sub/project.git", error), "top/sub/project");
    EXPECT_EQ(projectName("top/sub/project"), "project");

    EXPECT_EQ(cloneUrl("https://git.example.com/%s.git", "git@git.example.com:group/project.git"),
              "https://git.example.com/group/project.git");
    EXPECT_EQ(cloneUrl("", "git@git.example.com:group/project.git"), "git@git.example.com:group/project.git");
    EXPECT_EQ(cloneUrl("https://git.example.com/%s.git", "git@git.example.com:group/../x.git"), "");
}
