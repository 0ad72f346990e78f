// Helpers for tests that run real processes: temp dirs, files, commands with captured output,
// a background agent process, and polling with a generous timeout.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace agent::test {

// A fresh directory under $TMPDIR, removed with everything in it at destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& text);
bool fileExists(const std::string& path);

struct CommandResult {
    int exitCode = -1; // exit status, or 128 + signal
    std::string out;
    std::string err;
    bool timedOut = false;
};

// Runs argv[0] (no shell) with stdin from `inputFile` (default /dev/null), capturing stdout and stderr.
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& workDir = {},
                         std::chrono::seconds timeout = std::chrono::seconds(120),
                         const std::map<std::string, std::string>& extraEnv = {}, const std::string& inputFile = {});

// A process started in the background with its output going to files in `logDir`.
class BackgroundProcess {
public:
    BackgroundProcess(const std::vector<std::string>& argv, const std::string& logDir, const std::string& workDir = {});
    ~BackgroundProcess(); // SIGKILLs and reaps a process still running
    BackgroundProcess(const BackgroundProcess&) = delete;
    BackgroundProcess& operator=(const BackgroundProcess&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int signal) const;
    // Waits for the exit; returns the exit code (128 + signal when killed), or -1 on timeout.
    int wait(std::chrono::milliseconds timeout);
    bool running();
    std::string out() const;
    std::string err() const;

private:
    pid_t pid_ = -1;
    int exitCode_ = -1;
    std::string outPath_;
    std::string errPath_;
};

// Polls `condition` every 50 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A `modules` directory in `dir` with a symlink to each module file (modules and test modules are
// built into different directories; a config names one). Returns its path.
std::string linkModuleDir(const TempDir& dir, const std::vector<std::string>& moduleFiles);

// Writes `dir`/agent.toml for a test agent that keeps every path it writes inside `dir`:
// [agent] (no API, hostname test-host, namespace ns1, then `agentExtra`, and when that sets a
// registryaddr, registry_splay = 0), [modules] and [log], twelve lines plus `agentExtra`,
// followed by `rest`. Returns the file's path.
std::string writeAgentConfig(const TempDir& dir, const std::string& moduleDir, const std::string& load,
                             const std::string& rest, const std::string& agentExtra = "");

std::vector<std::string> lines(const std::string& text);
// True while the process runs; false once it exited, zombie or not.
bool processAlive(pid_t pid);
// /proc/<pid>/stat after the command name: [0] state, [1] ppid, ... [11] utime, [12] stime
// (clock ticks), [19] start time; empty when the process is gone.
std::vector<std::string> procStat(pid_t pid);
// CPU seconds (user + system) the process has used so far; 0 when it is gone.
double cpuSeconds(pid_t pid);
bool contains(const std::string& text, const std::string& part);

} // namespace agent::test
