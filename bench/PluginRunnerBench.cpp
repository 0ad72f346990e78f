// Plugin runs per second: a trivial plugin (a copy of /bin/true) through PluginRunner (pipes, poll,
// pidfd, user switch to `nobody` when run as root, process-group cleanup) next to a plain
// fork + execve + waitpid loop of the same executable in the same run (target: runner >= 0.8x
// plain; BM_RunnerAndPlainInterleaved gives the ratio least disturbed by other load on the
// machine). The plugin's folder goes to $TMPDIR and is removed at the end.
#include "PluginRunner.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <pwd.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// `<tmp>/plugin-bench-XXXXXX/plugin`, readable by everybody; removed at exit.
class TrivialPlugin {
public:
    TrivialPlugin() {
        std::string pattern = (fs::temp_directory_path() / "plugin-bench-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        folder_ = pattern;
        fs::permissions(folder_, fs::perms(0755));
        fs::copy_file("/bin/true", folder_ + "/plugin");
        fs::permissions(folder_ + "/plugin", fs::perms(0755));
    }
    ~TrivialPlugin() {
        std::error_code ignored; // nothing to do about a leftover temp folder at exit
        fs::remove_all(folder_, ignored);
    }
    const std::string& folder() const { return folder_; }

private:
    std::string folder_;
};

const TrivialPlugin& plugin() {
    static const TrivialPlugin instance;
    return instance;
}

std::string pluginsUser() {
    if (geteuid() == 0) return "nobody";
    const passwd* self = getpwuid(geteuid());
    if (self == nullptr) throw std::runtime_error("who am I?");
    return self->pw_name;
}

double plainRunsPerSecond = 0; // from BM_PlainForkExecWait, which runs first

// The baseline: what any spawner pays. False when the run failed.
bool plainRun(const std::string& path) {
    static char name[] = "plugin";
    char* argv[] = {name, nullptr};
    // The environment PluginRunner gives the plugin: LANG makes /bin/true load the locale.
    static std::string variables[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent", "LANG=C.UTF-8",
                                      "AGENT_NS=bench", "AGENT_PLUGIN=true"};
    char* envp[] = {variables[0].data(), variables[1].data(), variables[2].data(),
                    variables[3].data(), variables[4].data(), nullptr};
    const pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        execve(path.c_str(), argv, envp);
        _exit(127);
    }
    int status = 0;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

agent::exec::RunRequest trivialRequest() {
    agent::exec::RunRequest request;
    request.directory = plugin().folder();
    request.user = pluginsUser();
    request.environment = {{"AGENT_NS", "bench"}, {"AGENT_PLUGIN", "true"}};
    return request;
}

void BM_PlainForkExecWait(benchmark::State& state) {
    const std::string path = plugin().folder() + "/plugin";
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        if (!plainRun(path)) {
            state.SkipWithError("plain run failed");
            break;
        }
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    plainRunsPerSecond = static_cast<double>(state.iterations()) / elapsed.count();
    state.SetItemsProcessed(state.iterations());
}

void BM_PluginRunner(benchmark::State& state) {
    agent::exec::PluginRunner runner;
    const agent::exec::RunRequest request = trivialRequest();
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        const agent::exec::RunResult result = runner.run(request);
        if (result.status != agent::exec::RunStatus::Ok) {
            state.SkipWithError(("plugin run failed: " + result.reason).c_str());
            break;
        }
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    const double runsPerSecond = static_cast<double>(state.iterations()) / elapsed.count();
    state.SetItemsProcessed(state.iterations());
    if (plainRunsPerSecond > 0) state.counters["x_plain"] = runsPerSecond / plainRunsPerSecond;
}

// One plain run and one runner run per iteration, timed apart: on a shared machine the load
// changes between two separate benchmarks, so this one gives the ratio to trust.
void BM_RunnerAndPlainInterleaved(benchmark::State& state) {
    using Clock = std::chrono::steady_clock;
    agent::exec::PluginRunner runner;
    const agent::exec::RunRequest request = trivialRequest();
    const std::string path = plugin().folder() + "/plugin";
    Clock::duration plainTime{}, runnerTime{};
    for (auto _ : state) {
        const auto t0 = Clock::now();
        const bool plainOk = plainRun(path);
        const auto t1 = Clock::now();
        const bool runnerOk = runner.run(request).status == agent::exec::RunStatus::Ok;
        const auto t2 = Clock::now();
        if (!plainOk || !runnerOk) {
            state.SkipWithError("a run failed");
            break;
        }
        plainTime += t1 - t0;
        runnerTime += t2 - t1;
    }
    const double runs = static_cast<double>(state.iterations());
    const double plainPerSecond = runs / std::chrono::duration<double>(plainTime).count();
    const double runnerPerSecond = runs / std::chrono::duration<double>(runnerTime).count();
    state.counters["plain_runs/s"] = plainPerSecond;
    state.counters["runner_runs/s"] = runnerPerSecond;
    state.counters["x_plain"] = runnerPerSecond / plainPerSecond;
}

} // namespace

// Real time: the work happens in the children, which no CPU clock of ours sees.
BENCHMARK(BM_PlainForkExecWait)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PluginRunner)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RunnerAndPlainInterleaved)->UseRealTime()->Unit(benchmark::kMicrosecond);
