#include "TestSupport.h"

#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/TemporaryFile.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace agent::test {
namespace {

int decodeStatus(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// fork + exec with stdio redirected; the child resets the signal mask a test runner may block.
pid_t spawn(const std::vector<std::string>& argv, const std::string& workDir, const std::string& outPath,
            const std::string& errPath, const std::map<std::string, std::string>& extraEnv,
            const std::string& inputPath = "/dev/null") {
    std::vector<char*> args;
    std::vector<std::string> copy = argv;
    for (std::string& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        const int in = open(inputPath.c_str(), O_RDONLY);
        const int out = open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        if (!workDir.empty() && chdir(workDir.c_str()) != 0) _exit(126);
        for (const auto& [key, value] : extraEnv) setenv(key.c_str(), value.c_str(), 1);
        execv(args[0], args.data());
        _exit(127);
    }
    return pid;
}

} // namespace

TempDir::TempDir() {
    Poco::Path base(Poco::Path::temp());
    path_ = Poco::TemporaryFile::tempName(base.toString());
    Poco::File(path_).createDirectories();
}

TempDir::~TempDir() {
    try {
        Poco::File(path_).remove(true);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "cannot remove %s: %s\n", path_.c_str(), error.what());
    }
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void writeFile(const std::string& path, const std::string& text) {
    Poco::File(Poco::Path(path).parent()).createDirectories();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
}

bool fileExists(const std::string& path) { return Poco::File(path).exists(); }

CommandResult runCommand(const std::vector<std::string>& argv, const std::string& workDir, std::chrono::seconds timeout,
                         const std::map<std::string, std::string>& extraEnv, const std::string& inputFile) {
    TempDir capture;
    CommandResult result;
    const pid_t pid =
        spawn(argv, workDir, capture / "out", capture / "err", extraEnv, inputFile.empty() ? "/dev/null" : inputFile);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            result.exitCode = decodeStatus(status);
            break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            result.timedOut = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    result.out = readFile(capture / "out");
    result.err = readFile(capture / "err");
    return result;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const std::string& logDir,
                                     const std::string& workDir)
    : outPath_(logDir + "/process.out"), errPath_(logDir + "/process.err") {
    pid_ = spawn(argv, workDir, outPath_, errPath_, {});
}

BackgroundProcess::~BackgroundProcess() {
    if (running()) {
        kill(pid_, SIGKILL);
        wait(std::chrono::seconds(10));
    }
}

void BackgroundProcess::signal(int signal) const { kill(pid_, signal); }

bool BackgroundProcess::running() {
    if (exitCode_ >= 0 || pid_ <= 0) return false;
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
        exitCode_ = decodeStatus(status);
        return false;
    }
    return true;
}

int BackgroundProcess::wait(std::chrono::milliseconds timeout) {
    eventually([this] { return !running(); }, timeout);
    return exitCode_;
}

std::string BackgroundProcess::out() const { return readFile(outPath_); }
std::string BackgroundProcess::err() const { return readFile(errPath_); }

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

std::string linkModuleDir(const TempDir& dir, const std::vector<std::string>& moduleFiles) {
    const std::string modules = dir / "modules";
    Poco::File(modules).createDirectories();
    for (const std::string& file : moduleFiles) {
        const std::string link = modules + "/" + Poco::Path(file).getFileName();
        if (symlink(file.c_str(), link.c_str()) != 0)
            throw std::runtime_error("symlink " + link + " -> " + file + ": " + std::strerror(errno));
    }
    return modules;
}

namespace {

// A test's registry is polled at once, not after [agent] registry_splay's random delay; the line
// is added only for configs with a registry, so that the line numbers of the others stay put.
std::string registryWithoutSplay(const std::string& agentExtra) {
    const bool registry = agentExtra.find("registryaddr") != std::string::npos;
    return registry && agentExtra.find("registry_splay") == std::string::npos ? "registry_splay = 0\n" : "";
}

} // namespace

std::string writeAgentConfig(const TempDir& dir, const std::string& moduleDir, const std::string& load,
                             const std::string& rest, const std::string& agentExtra) {
    const std::string text = "[agent]\n"
                             "listen = \"\"\n"
                             "hostname = \"test-host\"\n"
                             "namespaces = [\"ns1\"]\n"
                             "statedir = \"" + dir / "state" + "\"\n"
                             "pluginsdir = \"" + dir / "plugins" + "\"\n"
                             "pidfile = \"" + dir / "agent.pid" + "\"\n" +
                             agentExtra + registryWithoutSplay(agentExtra) +
                             "[modules]\n"
                             "dir = \"" + moduleDir + "\"\n"
                             "load = " + load + "\n"
                             "[log]\n"
                             "logdir = \"" + dir / "log" + "\"\n" +
                             rest;
    writeFile(dir / "agent.toml", text);
    return dir / "agent.toml";
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> result;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
}

std::vector<std::string> procStat(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t close = stat.rfind(')'); // the command name may hold spaces and parentheses
    std::vector<std::string> values;
    if (close == std::string::npos || close + 2 > stat.size()) return values;
    std::istringstream fields(stat.substr(close + 2));
    for (std::string field; fields >> field;) values.push_back(field);
    return values;
}

double cpuSeconds(pid_t pid) {
    const std::vector<std::string> values = procStat(pid);
    if (values.size() < 13) return 0;
    return static_cast<double>(std::stoll(values[11]) + std::stoll(values[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace agent::test

namespace agent::test {

bool processAlive(pid_t pid) {
    if (kill(pid, 0) != 0) return false;
    const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

} // namespace agent::test
