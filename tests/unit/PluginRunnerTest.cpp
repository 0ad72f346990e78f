// Specification of source-exec's PluginRunner, with real processes: the test plugins in
// tests/fixtures/plugins/ are copied as `plugin` into fresh folders (0755, so that `nobody` can
// use them) and run as `nobody`. forking_sleeper.c is compiled with `cc` at run time. Must run as
// root (switching to the plugins user needs it); skipped otherwise.
//
// The fallbacks for kernels without close_range or pidfd_open run here in two ways: tests that
// restrict a runner to less than the kernel offers (PluginRunner(allowed)), and the whole suite
// under tests/tools/seccomp_enosys (ctest: PluginRunnerWithoutCloseRangeAndPidfdOpen), which makes
// both calls fail with ENOSYS and sets AGENT_TEST_EXPECT_FALLBACKS=1.
#include "PluginRunner.h"
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <sched.h>
#include <set>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;
using agent::exec::describeKernelSupport;
using agent::exec::KernelSupport;
using agent::exec::PluginRunner;
using agent::exec::RunRequest;
using agent::exec::RunResult;
using agent::exec::RunStatus;
using agent::exec::splitParameters;
using agent::test::TempDir;
using namespace std::chrono_literals;

namespace {

const std::string kUser = "nobody";
const std::string kHelloOutput = "[{\"name\": \"answer\", \"value\": 42}]\nsecond line\twith a tab\n";

void makeReadable(const std::string& path, fs::perms mode = fs::perms(0755)) {
    fs::permissions(path, mode);
}

// `<dir>/<name>/plugin`, a copy of `source` with mode 0755; returns the plugin's folder.
std::string installPlugin(const TempDir& dir, const std::string& name, const std::string& source) {
    makeReadable(dir.path());
    const std::string folder = dir / name;
    fs::create_directories(folder);
    makeReadable(folder);
    fs::copy_file(source, folder + "/plugin", fs::copy_options::overwrite_existing);
    makeReadable(folder + "/plugin");
    return folder;
}

std::string fixture(const std::string& file) {
    return std::string(AGENT_TEST_FIXTURES) + "/plugins/" + file;
}

std::string installFixture(const TempDir& dir, const std::string& file) {
    return installPlugin(dir, file, fixture(file));
}

// forking_sleeper.c compiled once per test run.
const std::string& sleeperFolder() {
    static const TempDir dir;
    static const std::string folder = [] {
        makeReadable(dir.path());
        const std::string path = dir / "forking_sleeper";
        fs::create_directories(path);
        makeReadable(path);
        const auto built = agent::test::runCommand(
            {"/usr/bin/cc", "-O2", "-Wall", "-o", path + "/plugin", fixture("forking_sleeper.c")});
        if (built.exitCode != 0) throw std::runtime_error("cannot compile forking_sleeper.c: " + built.err);
        makeReadable(path + "/plugin");
        return path;
    }();
    return folder;
}

// A folder anybody may write to, for files the plugins write.
std::string scratchFolder(const TempDir& dir) {
    makeReadable(dir.path());
    const std::string path = dir / "scratch";
    fs::create_directories(path);
    makeReadable(path, fs::perms(01777));
    return path;
}

RunRequest requestFor(const std::string& folder) {
    RunRequest request;
    request.directory = folder;
    request.user = kUser;
    request.environment = {{"AGENT_NS", "ns1"}, {"AGENT_PLUGIN", "project"}};
    request.timeout = 20s;
    return request;
}

std::string describe(const RunResult& result) {
    return std::string(toString(result.status)) + " exit=" + std::to_string(result.exitCode) +
           " signal=" + std::to_string(result.signal) + " reason=" + result.reason + " stderr=" + result.stderrTail;
}

passwd nobody() {
    const passwd* entry = getpwnam(kUser.c_str());
    if (entry == nullptr) throw std::runtime_error("no user nobody");
    return *entry;
}

std::vector<pid_t> pidsIn(const std::string& text) {
    std::vector<pid_t> pids;
    std::istringstream in(text);
    for (pid_t pid = 0; in >> pid;)
        pids.push_back(pid);
    return pids;
}

// Processes whose parent is this process (zombies included).
std::vector<pid_t> childrenOfUs() {
    std::vector<pid_t> children;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string stat;
        try {
            stat = agent::test::readFile(entry.path().string() + "/stat");
        } catch (const std::exception&) {
            continue; // gone meanwhile
        }
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 2));
        char state = 0;
        pid_t parent = 0;
        rest >> state >> parent;
        if (parent == getpid()) children.push_back(std::stoi(name));
    }
    return children;
}

// Processes running the given executable.
std::vector<pid_t> processesRunning(const std::string& executable) {
    std::vector<pid_t> found;
    const std::string wanted = fs::canonical(executable).string();
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::error_code error;
        const fs::path exe = fs::read_symlink(entry.path() / "exe", error);
        if (!error && exe.string() == wanted) found.push_back(std::stoi(name));
    }
    return found;
}

// True when no child of ours waits to be reaped (peeks only: reaps nothing).
bool noZombieChildren() {
    siginfo_t info{};
    const int rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
    return (rc != 0 && errno == ECHILD) || (rc == 0 && info.si_pid == 0);
}

// Descriptors of the agent that no plugin may get: opened without close-on-exec, a file, a socket
// pair, and a copy just below the soft RLIMIT_NOFILE, so that a way of closing that stops early
// fails the test as well. Closed at destruction.
class InheritableDescriptors {
public:
    InheritableDescriptors() {
        keep(open("/dev/null", O_RDONLY), "open /dev/null");
        int pair[2];
        check(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), "socketpair");
        fds_.insert(fds_.end(), {pair[0], pair[1]});
        rlimit limit{};
        check(getrlimit(RLIMIT_NOFILE, &limit), "getrlimit");
        keep(fcntl(fds_.front(), F_DUPFD, static_cast<int>(limit.rlim_cur) - 1), "fcntl(F_DUPFD) near the limit");
    }
    ~InheritableDescriptors() {
        for (int fd : fds_)
            close(fd);
    }
    InheritableDescriptors(const InheritableDescriptors&) = delete;
    InheritableDescriptors& operator=(const InheritableDescriptors&) = delete;

private:
    static int check(int rc, const char* what) {
        if (rc < 0) throw std::system_error(errno, std::generic_category(), what);
        return rc;
    }
    void keep(int fd, const char* what) { fds_.push_back(check(fd, what)); }
    std::vector<int> fds_;
};

// What a runner restricted to `allowed` uses (what PluginRunner(allowed) computes), for messages.
KernelSupport effectiveSupport(const KernelSupport& allowed) {
    KernelSupport support = PluginRunner::kernelSupport();
    support.closeRangeCloexec = support.closeRangeCloexec && allowed.closeRangeCloexec;
    support.closeRange = support.closeRange && allowed.closeRange;
    support.procSelfFd = support.procSelfFd && allowed.procSelfFd;
    support.pidfd = support.pidfd && allowed.pidfd;
    return support;
}

KernelSupport everything() {
    KernelSupport support;
    support.closeRangeCloexec = support.closeRange = support.procSelfFd = support.pidfd = true;
    return support;
}

// Kernel version as major * 1000 + minor, from uname.
int kernelVersion() {
    utsname name{};
    if (uname(&name) != 0) throw std::system_error(errno, std::generic_category(), "uname");
    int major = 0, minor = 0;
    if (std::sscanf(name.release, "%d.%d", &major, &minor) != 2) throw std::runtime_error(name.release);
    return major * 1000 + minor;
}

class PluginRunnerTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "the plugin runner tests switch users: run them as root";
    }
    TempDir dir_;
    PluginRunner runner_;
};

} // namespace

TEST(PluginRunnerParameters, SplitOnWhitespaceWithoutQuotingOrExpansion) {
    EXPECT_EQ(splitParameters("  one  two\tthree\n$HOME * 'quoted words' "),
              (std::vector<std::string>{"one", "two", "three", "$HOME", "*", "'quoted", "words'"}));
    EXPECT_TRUE(splitParameters("").empty());
    EXPECT_TRUE(splitParameters(" \t ").empty());
    EXPECT_EQ(toString(RunStatus::BadOutput), std::string("bad_output"));
    EXPECT_EQ(toString(RunStatus::NotRunnable), std::string("not_runnable"));
}

TEST_F(PluginRunnerTest, TrivialPluginOutputIsCapturedExactly) {
    const RunResult result = runner_.run(requestFor(installFixture(dir_, "hello.sh")));
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_EQ(result.exitCode, 0);
    EXPECT_EQ(result.output, kHelloOutput);
    EXPECT_EQ(result.stderrTail, "");
    EXPECT_EQ(result.reason, "");
}

TEST_F(PluginRunnerTest, OutputAtTheCapIsAcceptedAndOneByteMoreIsBadOutput) {
    RunRequest request = requestFor(installFixture(dir_, "hello.sh"));
    request.stdoutCap = kHelloOutput.size();
    RunResult result = runner_.run(request);
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_EQ(result.output, kHelloOutput);

    request.stdoutCap = kHelloOutput.size() - 1;
    result = runner_.run(request);
    EXPECT_EQ(result.status, RunStatus::BadOutput) << describe(result);
    EXPECT_EQ(result.output, kHelloOutput.substr(0, request.stdoutCap));
}

TEST_F(PluginRunnerTest, ArgumentsArePassedAsArgvExactlyWithoutShellExpansion) {
    RunRequest request = requestFor(installFixture(dir_, "args.sh"));
    request.args = splitParameters("  one  two\t$HOME * 'quoted words' `id` ");
    request.args.push_back("with space");
    request.args.push_back("");
    const RunResult result = runner_.run(request);
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_EQ(result.output, "[one]\n[two]\n[$HOME]\n[*]\n['quoted]\n[words']\n[`id`]\n[with space]\n[]\n");
}

TEST_F(PluginRunnerTest, EnvironmentIsExactlyPathHomeLangNamespaceAndPlugin) {
    // env itself is the plugin: a shell would add PWD.
    const RunResult result = runner_.run(requestFor(installPlugin(dir_, "env", "/usr/bin/env")));
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    const std::vector<std::string> lines = agent::test::lines(result.output);
    const std::set<std::string> variables(lines.begin(), lines.end());
    EXPECT_EQ(variables,
              (std::set<std::string>{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + std::string(nobody().pw_dir),
                                     "LANG=C.UTF-8", "AGENT_NS=ns1", "AGENT_PLUGIN=project"}))
        << result.output;
    EXPECT_EQ(lines.size(), 5u);
}

TEST_F(PluginRunnerTest, PluginGetsOnlyStdinStdoutAndStderr) {
    // Fds of the agent without close-on-exec must not reach the plugin; ls itself opens 3.
    const InheritableDescriptors leaked;
    RunRequest request = requestFor(installPlugin(dir_, "ls", "/bin/ls"));
    request.args = {"/proc/self/fd"};
    const RunResult result = runner_.run(request);
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_EQ(result.output, "0\n1\n2\n3\n");
}

TEST_F(PluginRunnerTest, EveryWayOfClosingTheAgentsDescriptorsLeavesThePluginOnlyStdinStdoutAndStderr) {
    const InheritableDescriptors leaked;
    RunRequest request = requestFor(installPlugin(dir_, "ls", "/bin/ls"));
    request.args = {"/proc/self/fd"};
    // From close_range(CLOSE_RANGE_CLOEXEC) down to closing every number up to the hard limit.
    KernelSupport allowed = everything();
    for (bool* taken :
         {static_cast<bool*>(nullptr), &allowed.closeRangeCloexec, &allowed.closeRange, &allowed.procSelfFd}) {
        if (taken != nullptr) *taken = false;
        SCOPED_TRACE(describeKernelSupport(effectiveSupport(allowed)));
        const RunResult result = PluginRunner(allowed).run(request);
        ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
        EXPECT_EQ(result.output, "0\n1\n2\n3\n");
    }
}

// A child process of the test loses /proc (a mount namespace of its own without it) while its
// runner still starts with the /proc walk (probed before): the runner's child must then close
// every number up to the hard limit. The plugin lists its fds through a proc mounted elsewhere.
TEST_F(PluginRunnerTest, ChildThatCannotReadProcClosesEveryDescriptorUpToTheLimit) {
    const std::string folder = installPlugin(dir_, "ls", "/bin/ls");
    const std::string scratch = scratchFolder(dir_);
    const std::string otherProc = scratch + "/proc";
    fs::create_directories(otherProc);
    makeReadable(otherProc);
    const std::string outputFile = scratch + "/output";
    ASSERT_TRUE(PluginRunner::kernelSupport().procSelfFd);
    const InheritableDescriptors leaked;
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            mount("proc", otherProc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0 ||
            umount2("/proc", MNT_DETACH) != 0)
            _exit(errno == EPERM ? 20 : 10);
        if (open("/proc/self/fd", O_RDONLY | O_DIRECTORY) >= 0) _exit(11);
        KernelSupport allowed;
        allowed.procSelfFd = true;
        RunRequest request = requestFor(folder);
        request.args = {otherProc + "/self/fd"};
        const RunResult result = PluginRunner(allowed).run(request);
        FILE* out = fopen(outputFile.c_str(), "w");
        if (out == nullptr) _exit(12);
        fputs((result.status == RunStatus::Ok ? result.output : describe(result)).c_str(), out);
        fclose(out);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 20) GTEST_SKIP() << "no permission to unshare the mount namespace or mount proc";
    ASSERT_EQ(WEXITSTATUS(status), 0) << "10: cannot hide /proc, 11: /proc still readable, 12: cannot write";
    EXPECT_EQ(agent::test::readFile(outputFile), "0\n1\n2\n3\n");
}

TEST_F(PluginRunnerTest, PluginStartsWithNoSignalBlockedOrIgnored) {
    // As in the agent: SIGPIPE ignored, the termination signals blocked.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction previousPipe {};
    ASSERT_EQ(sigaction(SIGPIPE, &ignore, &previousPipe), 0);
    sigset_t termination, previousMask;
    sigemptyset(&termination);
    for (int signal : {SIGINT, SIGTERM, SIGQUIT, SIGHUP})
        sigaddset(&termination, signal);
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &termination, &previousMask), 0);

    RunRequest request = requestFor(installPlugin(dir_, "grep", "/bin/grep"));
    request.args = {"-E", "^Sig(Blk|Ign)", "/proc/self/status"};
    const RunResult result = runner_.run(request);
    ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &previousMask, nullptr), 0);
    ASSERT_EQ(sigaction(SIGPIPE, &previousPipe, nullptr), 0);
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_EQ(result.output, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST_F(PluginRunnerTest, WorkingDirectoryIsThePluginsFolder) {
    const std::string folder = installFixture(dir_, "pwd.sh");
    const RunResult result = runner_.run(requestFor(folder));
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_EQ(result.output, fs::canonical(folder).string() + "\n");
}

TEST_F(PluginRunnerTest, PluginRunsAsPluginsUserWithItsOwnGroups) {
    const RunResult result = runner_.run(requestFor(installFixture(dir_, "identity.sh")));
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    const passwd user = nobody();
    std::vector<gid_t> groups(256);
    int count = static_cast<int>(groups.size());
    ASSERT_GE(getgrouplist(user.pw_name, user.pw_gid, groups.data(), &count), 0);
    groups.resize(static_cast<std::size_t>(count));
    std::set<gid_t> expectedGroups(groups.begin(), groups.end());

    const std::vector<std::string> lines = agent::test::lines(result.output);
    ASSERT_EQ(lines.size(), 3u) << result.output;
    EXPECT_EQ(lines[0], std::to_string(user.pw_uid));
    EXPECT_EQ(lines[1], std::to_string(user.pw_gid));
    std::set<gid_t> actualGroups;
    for (pid_t group : pidsIn(lines[2]))
        actualGroups.insert(static_cast<gid_t>(group));
    EXPECT_EQ(actualGroups, expectedGroups) << lines[2];
}

TEST_F(PluginRunnerTest, RootPluginsUserIsRefusedAndNothingRuns) {
    const std::string marker = scratchFolder(dir_) + "/ran";
    RunRequest request = requestFor(installFixture(dir_, "marker.sh"));
    request.args = {marker};
    request.user = "root";
    const RunResult result = runner_.run(request);
    EXPECT_EQ(result.status, RunStatus::NotRunnable);
    EXPECT_EQ(result.reason, "pluginsuser root is root; plugins never run as root");
    EXPECT_FALSE(agent::test::fileExists(marker));

    request.user = kUser; // the same plugin does run for a proper user
    ASSERT_EQ(runner_.run(request).status, RunStatus::Ok);
    EXPECT_TRUE(agent::test::fileExists(marker));
}

TEST_F(PluginRunnerTest, MissingPluginsUserIsRefusedAndNothingRuns) {
    const std::string marker = scratchFolder(dir_) + "/ran";
    RunRequest request = requestFor(installFixture(dir_, "marker.sh"));
    request.args = {marker};
    request.user = "no-such-user-here";
    const RunResult result = runner_.run(request);
    EXPECT_EQ(result.status, RunStatus::NotRunnable);
    EXPECT_EQ(result.reason, "pluginsuser no-such-user-here does not exist");
    EXPECT_FALSE(agent::test::fileExists(marker));
    EXPECT_TRUE(childrenOfUs().empty());
}

TEST_F(PluginRunnerTest, MissingPluginFileIsNotRunnable) {
    makeReadable(dir_.path());
    const RunResult result = runner_.run(requestFor(dir_.path()));
    EXPECT_EQ(result.status, RunStatus::NotRunnable);
    EXPECT_EQ(result.reason, "no plugin file");
    EXPECT_EQ(runner_.run(requestFor(dir_ / "no-such-folder")).reason, "no plugin file");
}

TEST_F(PluginRunnerTest, NonExecutableOrNonRegularPluginIsNotRunnable) {
    const std::string folder = installFixture(dir_, "hello.sh");
    fs::permissions(folder + "/plugin", fs::perms(0644));
    RunResult result = runner_.run(requestFor(folder));
    EXPECT_EQ(result.status, RunStatus::NotRunnable);
    EXPECT_EQ(result.reason, "plugin is not executable");

    fs::create_directories(dir_ / "dir/plugin");
    result = runner_.run(requestFor(dir_ / "dir"));
    EXPECT_EQ(result.status, RunStatus::NotRunnable);
    EXPECT_EQ(result.reason, "plugin is not executable");
}

TEST_F(PluginRunnerTest, ExecFailureInTheChildIsReportedWithItsReason) {
    RunResult result = runner_.run(requestFor(installFixture(dir_, "bad_interpreter.sh")));
    EXPECT_EQ(result.status, RunStatus::NotRunnable);
    EXPECT_EQ(result.reason, "cannot execute plugin: No such file or directory");

    // Executable for root but not for nobody: the folder is closed to others.
    const std::string folder = installFixture(dir_, "hello.sh");
    fs::permissions(folder, fs::perms(0700));
    result = runner_.run(requestFor(folder));
    EXPECT_EQ(result.status, RunStatus::NotRunnable);
    EXPECT_EQ(result.reason, "cannot start plugin: chdir to the plugin's folder: Permission denied");
    EXPECT_TRUE(noZombieChildren());
}

TEST_F(PluginRunnerTest, NonZeroExitIsAnErrorWithTheExitCode) {
    const RunResult result = runner_.run(requestFor(installFixture(dir_, "exit3.sh")));
    EXPECT_EQ(result.status, RunStatus::Error);
    EXPECT_EQ(result.exitCode, 3);
    EXPECT_EQ(result.signal, 0);
    EXPECT_EQ(result.reason, "exit code 3");
    EXPECT_EQ(result.output, "partial\n");
    EXPECT_EQ(result.stderrTail, "oops\n");
}

TEST_F(PluginRunnerTest, PluginKilledBySignalIsAnErrorWithTheSignal) {
    const RunResult result = runner_.run(requestFor(installFixture(dir_, "killself.sh")));
    EXPECT_EQ(result.status, RunStatus::Error);
    EXPECT_EQ(result.signal, SIGKILL);
    EXPECT_EQ(result.exitCode, -1);
    EXPECT_EQ(result.reason, "killed by SIGKILL");
}

TEST_F(PluginRunnerTest, OutputOverTheCapIsBadOutputAndLeavesNoProcess) {
    RunRequest request = requestFor(installFixture(dir_, "flood.sh"));
    request.stdoutCap = std::size_t{64} * 1024;
    const RunResult result = runner_.run(request);
    EXPECT_EQ(result.status, RunStatus::BadOutput) << describe(result);
    EXPECT_EQ(result.reason, "output exceeds 65536 bytes");
    EXPECT_EQ(result.output.size(), request.stdoutCap);
    EXPECT_EQ(result.output.substr(0, 12), "flood\nflood\n");
    const std::vector<pid_t> pids = pidsIn(result.stderrTail);
    ASSERT_EQ(pids.size(), 1u) << result.stderrTail;
    EXPECT_TRUE(agent::test::eventually([&] { return !agent::test::processAlive(pids[0]); }, 2s));
    EXPECT_LT(result.duration, 5s);
    EXPECT_TRUE(noZombieChildren());
}

TEST_F(PluginRunnerTest, LargeStdoutAndStderrAreReadTogetherAndOnlyTheStderrTailIsKept) {
    RunRequest request = requestFor(installFixture(dir_, "both_streams.sh"));
    request.stderrTail = 20;
    const RunResult result = runner_.run(request);
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_EQ(result.output, std::string(200000, 'o'));
    EXPECT_EQ(result.stderrTail, "eeeeeeTAIL-OF-STDERR");
}

TEST_F(PluginRunnerTest, SleepingShellPluginTimesOut) {
    RunRequest request = requestFor(installFixture(dir_, "sleep.sh"));
    request.timeout = 300ms;
    request.killGrace = 5s;
    const RunResult result = runner_.run(request);
    EXPECT_EQ(result.status, RunStatus::Timeout) << describe(result);
    EXPECT_EQ(result.reason, "timed out after 300 ms");
    EXPECT_EQ(result.signal, SIGTERM); // the shell obeys SIGTERM: no need to wait for the grace
    EXPECT_GE(result.duration, 300ms);
    EXPECT_LT(result.duration, 3s);
    EXPECT_TRUE(noZombieChildren());
}

TEST_F(PluginRunnerTest, ForkingPluginIgnoringSigtermTimesOutAndLeavesNoProcessBehind) {
    const std::string pidFile = scratchFolder(dir_) + "/pids";
    RunRequest request = requestFor(sleeperFolder());
    request.args = {pidFile};
    request.timeout = 300ms;
    request.killGrace = 300ms;
    const RunResult result = runner_.run(request);
    EXPECT_EQ(result.status, RunStatus::Timeout) << describe(result);
    EXPECT_EQ(result.signal, SIGKILL);
    EXPECT_GE(result.duration, 600ms);
    EXPECT_LT(result.duration, 5s);

    const std::vector<pid_t> pids = pidsIn(agent::test::readFile(pidFile));
    ASSERT_EQ(pids.size(), 2u);
    for (pid_t pid : pids) {
        EXPECT_TRUE(agent::test::eventually([&] { return !agent::test::processAlive(pid); }, 2s)) << pid;
        // The grandchild's zombie belongs to init, which reaps it soon; ours is reaped already.
        EXPECT_TRUE(agent::test::eventually([&] { return kill(pid, 0) != 0 && errno == ESRCH; }, 5s)) << pid;
    }
    EXPECT_TRUE(noZombieChildren());
    int status = 0;
    EXPECT_LE(waitpid(-1, &status, WNOHANG), 0);
}

TEST_F(PluginRunnerTest, WithoutPidfdAnExitIsNoticedAtOnceAndTimedOutForkingPluginsLeaveNothingBehind) {
    KernelSupport allowed = everything();
    allowed.pidfd = false;
    PluginRunner runner(allowed);
    const RunResult hello = runner.run(requestFor(installFixture(dir_, "hello.sh")));
    ASSERT_EQ(hello.status, RunStatus::Ok) << describe(hello);
    EXPECT_EQ(hello.output, kHelloOutput);
    EXPECT_LT(hello.duration, 1s);
    const RunResult exit3 = runner.run(requestFor(installFixture(dir_, "exit3.sh")));
    EXPECT_EQ(exit3.reason, "exit code 3");

    const std::string folder = sleeperFolder();
    constexpr int kThreads = 2;
    constexpr int kRunsPerThread = 50;
    std::vector<std::string> problems(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            RunRequest request = requestFor(folder);
            request.timeout = 20ms;
            request.killGrace = 20ms;
            for (int i = 0; i < kRunsPerThread; ++i) {
                const RunResult result = runner.run(request);
                if (result.status != RunStatus::Timeout && problems[t].empty()) problems[t] = describe(result);
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    for (const std::string& problem : problems)
        EXPECT_EQ(problem, "");
    EXPECT_EQ(childrenOfUs(), std::vector<pid_t>{});
    EXPECT_TRUE(noZombieChildren());
    EXPECT_TRUE(agent::test::eventually([&] { return processesRunning(folder + "/plugin").empty(); }, 5s))
        << processesRunning(folder + "/plugin").size() << " sleepers left";
}

TEST_F(PluginRunnerTest, LeftoverChildrenOfAnExitedPluginAreKilledWithoutHangingTheRun) {
    RunRequest request = requestFor(installFixture(dir_, "leftover.sh"));
    request.killGrace = 5s;
    const RunResult result = runner_.run(request);
    ASSERT_EQ(result.status, RunStatus::Ok) << describe(result);
    EXPECT_LT(result.duration, 3s);
    const std::vector<pid_t> pids = pidsIn(result.output);
    ASSERT_EQ(pids.size(), 1u) << result.output;
    // Its pipes close while the kernel tears it down, a moment before it is a zombie.
    EXPECT_TRUE(agent::test::eventually([&] { return !agent::test::processAlive(pids[0]); }, 2s));
}

TEST_F(PluginRunnerTest, ThousandTimedOutRunsLeaveNoProcessAndNoZombieBehind) {
    const std::string folder = sleeperFolder();
    constexpr int kThreads = 4;
    constexpr int kRunsPerThread = 250;
    std::atomic<int> timeouts{0};
    std::vector<std::string> problems(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            PluginRunner runner;
            RunRequest request = requestFor(folder);
            request.timeout = 20ms;
            request.killGrace = 20ms;
            for (int i = 0; i < kRunsPerThread; ++i) {
                const RunResult result = runner.run(request);
                if (result.status == RunStatus::Timeout)
                    ++timeouts;
                else if (problems[t].empty())
                    problems[t] = describe(result);
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    for (const std::string& problem : problems)
        EXPECT_EQ(problem, "");
    EXPECT_EQ(timeouts.load(), kThreads * kRunsPerThread);

    EXPECT_EQ(childrenOfUs(), std::vector<pid_t>{});
    EXPECT_TRUE(noZombieChildren());
    // Grandchildren were orphaned when their parent died; SIGKILL got them too.
    EXPECT_TRUE(agent::test::eventually([&] { return processesRunning(folder + "/plugin").empty(); }, 5s))
        << processesRunning(folder + "/plugin").size() << " sleepers left";
}

TEST_F(PluginRunnerTest, ParallelRunsFromFourThreadsAreAllCorrect) {
    const std::string argsFolder = installFixture(dir_, "args.sh");
    const std::string exitFolder = installFixture(dir_, "exit3.sh");
    const std::string sleepFolder = installFixture(dir_, "sleep.sh");
    constexpr int kThreads = 4;
    std::vector<std::string> problems(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            PluginRunner runner;
            auto complain = [&](const std::string& what) {
                if (problems[t].empty()) problems[t] = what;
            };
            for (int i = 0; i < 40; ++i) {
                const std::string tag = std::to_string(t) + "-" + std::to_string(i);
                RunRequest request = requestFor(argsFolder);
                request.args = {tag, "x y"};
                RunResult result = runner.run(request);
                if (result.status != RunStatus::Ok || result.output != "[" + tag + "]\n[x y]\n")
                    complain("args: " + describe(result) + " output=" + result.output);
                result = runner.run(requestFor(exitFolder));
                if (result.status != RunStatus::Error || result.exitCode != 3 || result.output != "partial\n")
                    complain("exit3: " + describe(result));
                if (i % 10 == 0) {
                    request = requestFor(sleepFolder);
                    request.timeout = 50ms;
                    result = runner.run(request);
                    if (result.status != RunStatus::Timeout) complain("sleep: " + describe(result));
                }
            }
        });
    }
    for (std::thread& thread : threads)
        thread.join();
    for (const std::string& problem : problems)
        EXPECT_EQ(problem, "");
    EXPECT_TRUE(noZombieChildren());
}

TEST_F(PluginRunnerTest, WithoutRootOnlyTheAgentsOwnUserCanRunPlugins) {
    const std::string folder = installFixture(dir_, "identity.sh");
    const passwd user = nobody();
    // A child process that is `nobody` plays the unprivileged agent; it reports through its exit code.
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (setgid(user.pw_gid) != 0 || setgroups(0, nullptr) != 0 || setuid(user.pw_uid) != 0) _exit(10);
        PluginRunner runner;
        RunResult result = runner.run(requestFor(folder));
        if (result.status != RunStatus::Ok || agent::test::lines(result.output).at(0) != std::to_string(user.pw_uid))
            _exit(11);
        RunRequest other = requestFor(folder);
        other.user = "daemon";
        result = runner.run(other);
        if (result.status != RunStatus::NotRunnable ||
            result.reason.find("cannot run plugins as pluginsuser daemon: the agent runs as uid") != 0)
            _exit(12);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "10: cannot become nobody, 11: own user did not run, 12: other user not refused";
}

// The packaged service runs the agent as its own user with CAP_SETUID, CAP_SETGID and CAP_KILL as
// ambient capabilities instead of root. Such an agent switches plugins to pluginsuser, and the
// plugin gets none of the agent's capabilities.
TEST_F(PluginRunnerTest, AgentWithOnlySetuidSetgidKillCapabilitiesRunsPluginsAsPluginsUserWithNoCapabilities) {
    const std::string folder = installFixture(dir_, "capabilities.sh");
    const passwd agentUser = *getpwnam("daemon"); // plays the agent's system user
    const passwd plugins = nobody();
    TempDir outputDir;
    ASSERT_EQ(chmod(outputDir.path().c_str(), 0777), 0); // written by the child once it is daemon
    const std::string outputFile = outputDir.path() + "/output";
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // What systemd does for User= with AmbientCapabilities=: keep the capabilities across the
        // change of user, then make them effective and ambient.
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) _exit(10);
        if (setgid(agentUser.pw_gid) != 0 || setgroups(0, nullptr) != 0 || setuid(agentUser.pw_uid) != 0) _exit(10);
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
        const std::uint32_t wanted = CAP_TO_MASK(CAP_SETUID) | CAP_TO_MASK(CAP_SETGID) | CAP_TO_MASK(CAP_KILL);
        data[0].effective = data[0].permitted = data[0].inheritable = wanted;
        if (syscall(SYS_capset, &header, data) != 0) _exit(11);
        for (int capability : {CAP_SETUID, CAP_SETGID, CAP_KILL})
            if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, capability, 0, 0) != 0) _exit(11);
        PluginRunner runner;
        RunRequest request = requestFor(folder);
        request.user = plugins.pw_name;
        const RunResult result = runner.run(request);
        if (result.status != RunStatus::Ok) _exit(12);
        FILE* out = fopen(outputFile.c_str(), "w");
        if (out == nullptr) _exit(13);
        fputs(result.output.c_str(), out);
        fclose(out);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0)
        << "10: cannot become daemon, 11: cannot set capabilities, 12: plugin did not run, 13: cannot write";
    const std::vector<std::string> lines = agent::test::lines(agent::test::readFile(outputFile));
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_EQ(lines[0], std::to_string(plugins.pw_uid));
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"})
        EXPECT_TRUE(std::find(lines.begin(), lines.end(), std::string(set) + ":\t0000000000000000") != lines.end())
            << set << " not empty in:\n"
            << agent::test::readFile(outputFile);
}

TEST(PluginRunnerKernelSupport, RunnerFindsWhatTheKernelOffersAndFallsBackWhereACallIsMissing) {
    const KernelSupport& support = PluginRunner::kernelSupport();
    const char* expectFallbacks = std::getenv("AGENT_TEST_EXPECT_FALLBACKS");
    if (expectFallbacks != nullptr && std::string(expectFallbacks) == "1") {
        // Under tests/tools/seccomp_enosys close_range,pidfd_open: the filter is really there ...
        errno = 0;
        EXPECT_EQ(syscall(SYS_close_range, ~0U, ~0U, 0U), -1);
        EXPECT_EQ(errno, ENOSYS);
        // ... and the runner saw it.
        EXPECT_FALSE(support.closeRangeCloexec);
        EXPECT_EQ(support.closeRangeCloexecError, ENOSYS);
        EXPECT_FALSE(support.closeRange);
        EXPECT_EQ(support.closeRangeError, ENOSYS);
        EXPECT_TRUE(support.procSelfFd);
        EXPECT_FALSE(support.pidfd);
        EXPECT_EQ(support.pidfdError, ENOSYS);
        EXPECT_EQ(describeKernelSupport(),
                  "plugin runner: close_range unavailable (ENOSYS), closing descriptors by walking /proc/self/fd; "
                  "pidfd_open unavailable (ENOSYS), watching plugins by polling waitid every 20 ms");
        return;
    }
    // Without the filter: what this kernel has. Older kernels may have had calls backported.
    const int version = kernelVersion();
    if (version >= 5011) {
        EXPECT_TRUE(support.closeRangeCloexec) << support.closeRangeCloexecError;
        EXPECT_EQ(describeKernelSupport(), "plugin runner: using close_range and pidfd_open");
    }
    if (version >= 5009) {
        EXPECT_TRUE(support.closeRange) << support.closeRangeError;
    }
    if (version >= 5003) {
        EXPECT_TRUE(support.pidfd) << support.pidfdError;
    }
    EXPECT_TRUE(support.procSelfFd) << support.procSelfFdError;
    // Each answer is the call's own.
    errno = 0;
    EXPECT_EQ(syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_CLOEXEC) == 0, support.closeRangeCloexec) << errno;
}

TEST(PluginRunnerKernelSupport, DescriptionNamesEachFallbackAndWhyItIsUsed) {
    KernelSupport support = everything();
    EXPECT_EQ(describeKernelSupport(support), "plugin runner: using close_range and pidfd_open");
    support.closeRangeCloexec = false;
    support.closeRangeCloexecError = EINVAL;
    EXPECT_EQ(describeKernelSupport(support), "plugin runner: close_range without CLOSE_RANGE_CLOEXEC (EINVAL), "
                                              "closing descriptors with close_range in the child; using pidfd_open");
    support.closeRange = false;
    support.closeRangeError = EPERM;
    support.procSelfFd = false;
    support.procSelfFdError = ENOENT;
    support.pidfd = false;
    support.pidfdError = ENOSYS;
    EXPECT_EQ(describeKernelSupport(support),
              "plugin runner: close_range unavailable (EPERM), closing descriptors one by one up to the "
              "RLIMIT_NOFILE hard limit (/proc/self/fd unreadable: ENOENT); pidfd_open unavailable (ENOSYS), "
              "watching plugins by polling waitid every 20 ms");
}
