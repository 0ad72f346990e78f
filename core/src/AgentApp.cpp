#include "AgentApp.h"

#include "BuildInfo.h"
#include "CoreRoutes.h"
#include "HostInfo.h"
#include "Logging.h"
#include "ModuleHost.h"
#include "PidFile.h"
#include "ServiceNotify.h"

#include <agent/Abi.h>
#include <agent/LineProtocol.h>

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/String.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionProcessor.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <poll.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace agent {
namespace {

using Poco::Util::Option;

const std::vector<std::string> kCommands = {"run", "start", "stop", "status", "check", "once", "version"};
constexpr const char* kReadyFdVariable = "AGENT_READY_FD";
constexpr int kStartTimeoutSeconds = 60;
// `agent stop` waits for the agent's own bound ([agent] stop_timeout) plus its watchdog's 2 s and
// a margin for the pid lock to go.
constexpr double kStopWaitMarginSeconds = 5;

// The pipe through which `agent run`, started by `agent start`, tells its starter whether it came
// up; the starter returns only then, with the agent's own error if it did not.
class ReadyPipe {
public:
    static ReadyPipe fromEnvironment() {
        ReadyPipe pipe;
        const char* value = std::getenv(kReadyFdVariable);
        if (value == nullptr) return pipe;
        pipe.fd_ = std::atoi(value);
        unsetenv(kReadyFdVariable);
        if (pipe.fd_ <= 2 || fcntl(pipe.fd_, F_SETFD, FD_CLOEXEC) != 0) pipe.fd_ = -1; // not ours
        return pipe;
    }
    bool active() const { return fd_ >= 0; }
    void succeed() { send("ready " + std::to_string(getpid()) + "\n"); }
    void fail(const std::string& message) { send("error " + message + "\n"); }

private:
    void send(const std::string& text) {
        if (fd_ < 0) return;
        const ssize_t written = write(fd_, text.data(), text.size());
        if (written != static_cast<ssize_t>(text.size()))
            std::cerr << "agent: cannot report start-up to the starter: " << std::strerror(errno) << "\n";
        close(fd_);
        fd_ = -1;
    }
    int fd_ = -1;
};

// Ends the process if stopping takes longer than its budget: a module stuck in stop() must not
// keep a host's agent half-alive. Disarmed when the stop completes.
class StopWatchdog {
public:
    StopWatchdog(double seconds, Poco::Logger& logger)
        : thread_([this, seconds, &logger] {
              std::unique_lock<std::mutex> lock(mutex_);
              const auto budget = std::chrono::milliseconds(static_cast<long>(seconds * 1000));
              if (!disarmed_.wait_for(lock, budget, [this] { return done_; })) {
                  logger.fatal("stopping took more than %.1f s; exiting without waiting for the rest", seconds);
                  std::_Exit(Poco::Util::Application::EXIT_SOFTWARE);
              }
          }) {}
    ~StopWatchdog() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            done_ = true;
        }
        disarmed_.notify_all();
        thread_.join();
    }

private:
    std::mutex mutex_; // guards done_
    std::condition_variable disarmed_;
    bool done_ = false;
    std::thread thread_;
};

// After ModuleHost::stop() abandoned a task, a detached thread still runs that module's code and
// may touch its instance, its context or the bus. Returning would run the destructors of all of
// them (and of Poco's singletons, the loggers included) under that thread. So the agent logs its
// last line and ends here with _Exit: no destructor runs, no library is unloaded, and the status is
// what a normal exit would have given.
[[noreturn]] void exitLeavingAbandonedWork(int status, const std::string& lastLine, Poco::Logger& logger) {
    logger.information("%s (work that did not stop in time was abandoned)", lastLine);
    std::cout.flush();
    std::cerr.flush();
    std::_Exit(status); // the log's file channel flushes every message (Logging.cpp)
}

sigset_t terminationSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : {SIGINT, SIGTERM, SIGQUIT, SIGHUP}) sigaddset(&set, signal);
    return set;
}

// Blocked in every thread (threads inherit the mask), so that only sigwait() below sees them.
void blockTerminationSignals() {
    const sigset_t set = terminationSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void waitForTermination(Poco::Logger& logger) {
    const sigset_t set = terminationSignals();
    for (;;) {
        int signal = 0;
        if (sigwait(&set, &signal) != 0) continue;
        if (signal == SIGHUP) {
            reopenLog();
            logger.information("SIGHUP: log file reopened");
            continue;
        }
        logger.information("received %s; stopping", std::string(strsignal(signal)));
        return;
    }
}

std::string selfExecutable() {
    char buffer[4096] = {};
    const ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string("/proc/self/exe");
}

// True while `pid` is a live process; a zombie (exited, not yet reaped by its parent) is not.
bool processExists(pid_t pid) {
    if (kill(pid, 0) != 0) return errno == EPERM;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

std::string joinLines(const std::vector<std::string>& lines) {
    std::string text;
    for (const std::string& line : lines) text += (text.empty() ? "" : "\n") + line;
    return text;
}

// Problems of the whole: sections no module claims, and an agent with sources but nowhere to send
// their data (no loaded module has the Sink role). An agent without sources needs no sink: one that
// only reports to an Argus master, or only serves the API (whose /post then answers 503).
std::vector<std::string> wiringProblems(const AgentConfig& config, const std::string& path, const ModuleHost& host) {
    std::vector<std::string> problems;
    const AgentSettings& settings = config.settings();
    for (const std::string& section : config.unclaimedSections(settings.modules)) {
        problems.push_back(config.toml()->locate(section) + ": [" + section + "]: no module named \"" + section +
                           "\" is loaded" + (settings.modulesDerived ? "" : " (add it to [modules] load)"));
    }
    const std::vector<std::string> sources = host.modulesWith(agent::Role::Source);
    if (host.sinkCount() == 0 && !sources.empty()) {
        std::string names;
        for (const std::string& name : sources) names += (names.empty() ? "" : ", ") + name;
        problems.push_back(path + ": no sink is loaded, but " + names + (sources.size() == 1 ? " publishes" : " publish") +
                           " metrics: set [output] name (nsq, influx or file) or load a sink- module");
    }
    return problems;
}

} // namespace

void AgentApp::defineAgentOptions(Poco::Util::OptionSet& options) {
    options.addOption(Option("help", "h", "print this text and exit"));
    options.addOption(Option("config-file", "f", "the TOML config file").argument("FILE"));
    options.addOption(Option("mode", "m", "with stop: \"clean\" also removes the plugin cache").argument("MODE"));
    options.addOption(
        Option("define", "D", "override one config value").argument("section.key=value").repeatable(true));
}

bool AgentApp::validateCommandLine(int argc, char** argv, std::string& error) {
    Poco::Util::OptionSet options;
    defineAgentOptions(options);
    // The service options ServerApplication adds on Unix; listed so the check accepts them.
    options.addOption(Option("daemon", "", "run as a daemon"));
    options.addOption(Option("umask", "", "umask of the daemon").argument("MASK"));
    options.addOption(Option("pidfile", "", "pid file of the daemon").argument("FILE"));
    Poco::Util::OptionProcessor processor(options);
    processor.setUnixStyle(true);
    std::vector<std::string> positional;
    try {
        for (int i = 1; i < argc; ++i) {
            std::string name;
            std::string value;
            if (!processor.process(argv[i], name, value)) positional.emplace_back(argv[i]);
            else if (name == "mode" && value != "clean") throw Poco::Util::InvalidArgumentException("--mode " + value, "the only mode is \"clean\"");
        }
        processor.checkRequired();
    } catch (const Poco::Util::OptionException& e) {
        error = e.displayText();
        return false;
    }
    if (positional.size() > 1) {
        error = "one command at a time, got: " + positional[0] + " " + positional[1];
        return false;
    }
    if (!positional.empty() && std::find(kCommands.begin(), kCommands.end(), positional[0]) == kCommands.end()) {
        error = "unknown command \"" + positional[0] + "\"";
        return false;
    }
    return true;
}

std::string AgentApp::usage() {
    std::ostringstream out;
    out << "usage: agent [COMMAND] [-f FILE] [-D section.key=value ...]\n"
           "\n"
           "commands:\n"
           "  run       run in the foreground (the default); SIGTERM/SIGINT stop, SIGHUP reopens the log\n"
           "  start     start as a daemon; returns once the agent runs\n"
           "  stop      stop the running agent; -m clean also removes the plugin cache (never the spool)\n"
           "  status    say whether the agent runs (exit 0) or not (exit 3)\n"
           "  check     validate the config and load every module without starting it\n"
           "  once      run every source once and print line protocol on stdout\n"
           "  version   print the version, the git commit and the module ABI\n"
           "\n"
           "options:\n"
           "  -f, --config-file=FILE     config file (default $AGENT_CONFIG, else /etc/agent/agent.toml)\n"
           "  -m, --mode=clean           with stop\n"
           "  -D section.key=value       override one config value\n"
           "  --daemon, --pidfile=FILE, --umask=MASK   Poco service options (run as a daemon)\n"
           "  -h, --help                 print this text\n";
    return out.str();
}

void AgentApp::defineOptions(Poco::Util::OptionSet& options) {
    ServerApplication::defineOptions(options);
    defineAgentOptions(options);
}

void AgentApp::handleOption(const std::string& name, const std::string& value) {
    ServerApplication::handleOption(name, value);
    // Poco's --daemon changes to "/" after the options; remember where relative paths start.
    if (launchDir_.empty()) launchDir_ = Poco::Path::current();
    if (name == "help") {
        helpRequested_ = true;
        stopOptionsProcessing();
    } else if (name == "config-file") {
        configPath_ = Poco::Path(value).absolute(Poco::Path::forDirectory(launchDir_)).toString();
    } else if (name == "mode") {
        mode_ = value;
    } else if (name == "define") {
        defines_.push_back(value);
    }
}

int AgentApp::main(const std::vector<std::string>& args) {
    if (helpRequested_) {
        std::cout << usage();
        return EXIT_OK;
    }
    if (launchDir_.empty()) launchDir_ = Poco::Path::current();
    const std::string command = args.empty() ? "run" : args.front();
    try {
        if (command == "run") return runAgent();
        if (command == "start") return startDaemon();
        if (command == "stop") return stopAgent();
        if (command == "status") return showStatus();
        if (command == "check") return checkConfig();
        if (command == "once") return runOnce();
        if (command == "version") return showVersion();
    } catch (const Poco::Exception& error) {
        std::cerr << "agent: " << error.displayText() << "\n";
        return EXIT_SOFTWARE;
    } catch (const std::exception& error) {
        std::cerr << "agent: " << error.what() << "\n";
        return EXIT_SOFTWARE;
    }
    std::cerr << "agent: unknown command \"" << command << "\"\n\n" << usage();
    return kExitUsage;
}

std::string AgentApp::defaultModuleDir() const {
    const std::string besideBinary = config().getString("application.dir", "") + "modules";
    if (Poco::File(besideBinary).exists()) return besideBinary;
    return AGENT_DEFAULT_MODULE_DIR;
}

bool AgentApp::loadConfig(std::unique_ptr<AgentConfig>& config, std::string* errorText) {
    if (configPath_.empty()) {
        const char* fromEnvironment = std::getenv("AGENT_CONFIG");
        configPath_ = fromEnvironment != nullptr ? fromEnvironment : "/etc/agent/agent.toml";
    }
    std::vector<std::string> problems;
    try {
        config = std::make_unique<AgentConfig>(
            AgentConfig::load(configPath_, defines_, AgentConfig::Paths{defaultModuleDir(), launchDir_}));
        return true;
    } catch (const ConfigFileError& error) {
        problems.push_back(error.what());
    } catch (const ConfigError& error) {
        problems = error.lines();
    }
    if (errorText != nullptr) *errorText = joinLines(problems);
    for (const std::string& line : problems) std::cerr << "agent: " << line << "\n";
    return false;
}

int AgentApp::runAgent() {
    ReadyPipe ready = ReadyPipe::fromEnvironment();
    std::unique_ptr<AgentConfig> config;
    std::string error;
    if (!loadConfig(config, &error)) {
        ready.fail(error);
        return EXIT_CONFIG;
    }
    const AgentSettings& settings = config->settings();
    blockTerminationSignals(); // before the first thread starts
    // A peer that closes its socket must cost a module an EPIPE error, not the agent its life.
    // (Children that exec must restore SIGPIPE: an ignored signal stays ignored across exec.)
    std::signal(SIGPIPE, SIG_IGN);

    const bool daemon = this->config().getBool("application.runAsDaemon", false);
    std::string logPath;
    try {
        logPath = setUpLogging(LogSettings{settings.logDir, settings.logLevel, settings.logRotateNum,
                                           settings.logRotateSize, !daemon && !ready.active()});
    } catch (const Poco::Exception& e) {
        const std::string message = "cannot write the log in " + settings.logDir + ": " + e.displayText();
        std::cerr << "agent: " << message << "\n";
        ready.fail(message);
        return EXIT_CANTCREAT;
    }
    Poco::Logger& log = Poco::Logger::get("agent");

    std::unique_ptr<PidFile> pidFile;
    try {
        pidFile = std::make_unique<PidFile>(settings.pidFile);
    } catch (const std::exception& e) {
        log.error("%s", std::string(e.what())); // on stderr too, unless started by `agent start`
        ready.fail(e.what());
        return EXIT_SOFTWARE;
    }

    for (const std::string& skipped : settings.skippedModules) log.warning("module %s", skipped);
    ModuleHost host(*config, detectIdentity(settings.hostname, settings.namespaces), log);
    registerCoreRoutes(host, std::chrono::system_clock::now());
    // The status page's charts and log (docs/ARCHITECTURE.md §11.1), sampled while the agent runs.
    HistorySampler history(HistorySampler::sinkCounters(host.bus()), {});
    registerHistoryRoutes(host.routes(), history, logRing());
    std::vector<ModuleReport> reports;
    host.load(settings.modules, reports);
    std::vector<std::string> problems;
    for (const ModuleReport& report : reports) problems.insert(problems.end(), report.problems.begin(), report.problems.end());
    for (const std::string& problem : wiringProblems(*config, configPath_, host)) problems.push_back(problem);
    if (!problems.empty()) {
        for (const std::string& problem : problems) log.error("%s", problem);
        ready.fail(joinLines(problems));
        return EXIT_CONFIG;
    }

    try {
        host.start();
    } catch (const std::exception& e) {
        const std::string message = std::string("start-up failed: ") + e.what();
        log.error("%s", message);
        ready.fail(message);
        StopWatchdog watchdog(settings.stopTimeoutSeconds + 2, log);
        if (!host.stop()) exitLeavingAbandonedWork(EXIT_SOFTWARE, "agent stopped (start-up failed)", log);
        return EXIT_SOFTWARE;
    }
    std::string names;
    for (const std::string& name : settings.modules) names += (names.empty() ? "" : ", ") + name;
    log.information("agent %s started: pid %d, config %s, modules: %s, log %s", std::string(AGENT_VERSION),
                    static_cast<int>(getpid()), configPath_, names, logPath);
    history.start(); // the bus's sinks are known now
    ready.succeed();
    notifyReady("collecting: " + std::to_string(settings.modules.size()) + " modules (" + names + ")");

    waitForTermination(log);
    history.stop();
    notifyStopping();
    bool clean = true;
    {
        // Last resort only: ModuleHost::stop() keeps to stop_timeout by itself, abandoning tasks
        // that do not end; this fires only when a module's own stop() hangs.
        StopWatchdog watchdog(settings.stopTimeoutSeconds + 2, log);
        clean = host.stop();
    }
    if (!clean) {
        pidFile.reset();
        exitLeavingAbandonedWork(EXIT_OK, "agent stopped", log);
    }
    log.information("agent stopped");
    return EXIT_OK;
}

int AgentApp::startDaemon() {
    std::unique_ptr<AgentConfig> config;
    if (!loadConfig(config)) return EXIT_CONFIG;
    const AgentSettings& settings = config->settings();
    if (auto pid = PidFile::runningPid(settings.pidFile)) {
        std::cerr << "agent: agent is already running (pid " << *pid << ", pid file " << settings.pidFile << ")\n";
        return EXIT_SOFTWARE;
    }

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    std::vector<std::string> arguments = {selfExecutable(), "run", "-f", configPath_};
    for (const std::string& define : defines_) arguments.push_back("-D" + define);
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const std::string readyFd = std::to_string(fds[1]);

    const pid_t child = fork();
    if (child < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (child == 0) {
        // First child: a new session, then a second fork so the daemon is no session leader and
        // can never acquire a controlling terminal. Only async-signal-safe calls from here on.
        setsid();
        const pid_t daemonPid = fork();
        if (daemonPid != 0) _exit(daemonPid < 0 ? 1 : 0);
        const int devNull = open("/dev/null", O_RDWR);
        if (devNull >= 0) {
            dup2(devNull, 0);
            dup2(devNull, 1);
            dup2(devNull, 2);
            if (devNull > 2) close(devNull);
        }
        fcntl(fds[1], F_SETFD, 0); // the daemon keeps the write end across exec
        setenv(kReadyFdVariable, readyFd.c_str(), 1);
        execv(argv[0], argv.data());
        const char message[] = "error cannot execute the agent binary\n";
        (void)!write(fds[1], message, sizeof message - 1);
        _exit(127);
    }
    close(fds[1]);
    int status = 0;
    waitpid(child, &status, 0);

    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStartTimeoutSeconds);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd pfd{fds[0], POLLIN, 0};
        const int ready = poll(&pfd, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        char buffer[4096];
        const ssize_t n = read(fds[0], buffer, sizeof buffer);
        if (n <= 0) break;
        answer.append(buffer, static_cast<std::size_t>(n));
    }
    close(fds[0]);

    const std::string logFile = settings.logDir + "/agent.log";
    if (answer.rfind("ready ", 0) == 0) {
        std::cout << "agent started (pid " << Poco::trim(answer.substr(6)) << "); log " << logFile << "\n";
        return EXIT_OK;
    }
    if (answer.rfind("error ", 0) == 0) {
        std::istringstream lines(Poco::trimRight(answer.substr(6)));
        for (std::string line; std::getline(lines, line);) std::cerr << "agent: " << line << "\n";
        return EXIT_SOFTWARE;
    }
    std::cerr << "agent: the agent did not report that it runs within " << kStartTimeoutSeconds
              << " s or exited during start-up; see " << logFile << "\n";
    return EXIT_SOFTWARE;
}

void AgentApp::removePluginCache(const AgentSettings& settings) {
    const std::string dir = settings.pluginsDir;
    if (dir.empty() || dir == "/" || !Poco::Path(dir).isAbsolute()) {
        std::cerr << "agent: refusing to clean plugin cache \"" << dir << "\"\n";
        return;
    }
    if (!Poco::File(dir).exists()) {
        std::cout << "plugin cache " << dir << " does not exist; nothing to clean\n";
        return;
    }
    const std::string state = Poco::Path(settings.stateDir).makeDirectory().toString();
    std::size_t removed = 0;
    for (Poco::DirectoryIterator it(dir), end; it != end; ++it) {
        const std::string entry = Poco::Path(it->path()).makeDirectory().toString();
        if (state.rfind(entry, 0) == 0) {
            std::cout << "kept " << it->path() << ": it holds the state directory (spool)\n";
            continue;
        }
        it->remove(true);
        ++removed;
    }
    std::cout << "plugin cache " << dir << " cleaned (" << removed << " entries removed)\n";
}

int AgentApp::stopAgent() {
    std::unique_ptr<AgentConfig> config;
    if (!loadConfig(config)) return EXIT_CONFIG;
    const AgentSettings& settings = config->settings();
    int result = EXIT_OK;
    if (auto pid = PidFile::runningPid(settings.pidFile)) {
        if (*pid <= 1 || kill(*pid, SIGTERM) != 0) {
            std::cerr << "agent: cannot signal pid " << *pid << ": " << std::strerror(errno) << "\n";
            return EXIT_SOFTWARE;
        }
        const double waitSeconds = settings.stopTimeoutSeconds + kStopWaitMarginSeconds;
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(static_cast<long>(waitSeconds * 1000));
        while (PidFile::runningPid(settings.pidFile) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        // The lock goes a moment before the process: wait for the process itself.
        while (processExists(*pid) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (PidFile::runningPid(settings.pidFile) || processExists(*pid)) {
            std::cerr << "agent: pid " << *pid << " did not stop within " << waitSeconds << " s\n";
            return EXIT_SOFTWARE;
        }
        std::cout << "agent stopped (pid " << *pid << ")\n";
    } else {
        std::cout << "agent is not running\n";
    }
    if (mode_ == "clean") removePluginCache(settings);
    return result;
}

int AgentApp::showStatus() {
    std::unique_ptr<AgentConfig> config;
    if (!loadConfig(config)) return EXIT_CONFIG;
    if (auto pid = PidFile::runningPid(config->settings().pidFile)) {
        std::cout << "agent is running (pid " << *pid << ")\n";
        return EXIT_OK;
    }
    std::cout << "agent is not running\n";
    return kExitNotRunning;
}

int AgentApp::checkConfig() {
    std::unique_ptr<AgentConfig> config;
    std::string error;
    if (!loadConfig(config, &error)) {
        std::cout << "config " << configPath_ << ": invalid\n";
        return 1;
    }
    const AgentSettings& settings = config->settings();
    std::cout << "config " << configPath_ << ": ok"
              << (settings.modulesDerived ? " (modules derived from its sections)" : "") << "\n";
    setUpConsoleLogging("warning");
    ModuleHost host(*config, detectIdentity(settings.hostname, settings.namespaces), Poco::Logger::get("agent"));
    std::vector<ModuleReport> reports;
    bool ok = host.load(settings.modules, reports);
    for (const ModuleReport& report : reports) {
        if (report.ok) {
            std::cout << "module " << report.name << ": ok (" << report.path << ")\n";
            continue;
        }
        std::cout << "module " << report.name << ": error: " << report.problems.front() << "\n";
        for (std::size_t i = 1; i < report.problems.size(); ++i) std::cout << "    " << report.problems[i] << "\n";
    }
    for (const std::string& skipped : settings.skippedModules) std::cout << "module " << skipped << "\n";
    for (const std::string& problem : wiringProblems(*config, configPath_, host)) {
        std::cout << "config: error: " << problem << "\n";
        ok = false;
    }
    return ok ? EXIT_OK : 1;
}

int AgentApp::runOnce() {
    std::unique_ptr<AgentConfig> config;
    if (!loadConfig(config)) return EXIT_CONFIG;
    const AgentSettings& settings = config->settings();
    setUpConsoleLogging("warning"); // stdout carries only the metrics
    // Every module is loaded and configured (so `once` checks the same config as `run`);
    // collectOnce() starts only those with the Source role.
    ModuleHost host(*config, detectIdentity(settings.hostname, settings.namespaces), Poco::Logger::get("agent"));
    std::vector<ModuleReport> reports;
    if (!host.load(settings.modules, reports)) {
        for (const ModuleReport& report : reports)
            for (const std::string& problem : report.problems) std::cerr << "agent: " << problem << "\n";
        return EXIT_CONFIG;
    }
    const Batch batch = host.collectOnce();
    std::string text;
    LineProtocolEncoder({"ns"}).append(text, batch);
    std::cout << text << std::flush;
    return EXIT_OK;
}

int AgentApp::showVersion() {
    std::cout << "agent " << AGENT_VERSION << " (commit " << AGENT_GIT_COMMIT << ", module ABI " << AGENT_SDK_ABI << ")\n";
    return EXIT_OK;
}

} // namespace agent
