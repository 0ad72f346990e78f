// A fleet on one machine (bench/fleet.sh): AGENTS agents, each with its own host name, state,
// plugins directory and sink file, against one registry fixture, one `git daemon` serving ten
// plugin repositories, and nothing else. Three phases, each up to PHASE seconds:
//   start    every agent starts at once, with no registry cache and no checkout;
//   change   the registry adds a plugin, removes one and shortens one's interval;
//   restart  every agent is stopped and started again at once (a package upgrade).
// It prints what the registry and the git server saw per second, how long the fleet took to run
// every plugin and to apply the change, memory and CPU per agent, and points delivered against
// points the agents acknowledged. It asserts nothing: the figures go to docs/FLEET.md.
//
// Usage: fleet_driver AGENT_BINARY MODULE_DIR [AGENTS] [PHASE_SECONDS]
#include "GitServer.h"
#include "RegistryFixture.h"
#include "TestSupport.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <sys/stat.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace agent::test;

namespace {

constexpr int kPlugins = 10;           // fleet/p0 .. fleet/p9 at start
constexpr int kRegistryInterval = 60;  // [agent] registry_interval of every agent (registry_splay 60 s, the default)
constexpr int kPluginInterval = 30;    // the registry's interval of every plugin, seconds
const std::string kAdded = "p10";      // the change: p10 added,
const std::string kRemoved = "p9";     // p9 removed,
const std::string kShortened = "p0";   // p0's interval 30 -> 10 s

double now() {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()) /
           1e6;
}

RegistryFixture::Entry pluginEntry(const std::string& project, int interval) {
    return RegistryFixture::pluginEntry(project, "git@git.example.com:fleet/" + project + ".git", std::to_string(interval));
}

std::string procField(pid_t pid, const std::string& file, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key, 0) == 0) return line.substr(key.size());
    }
    return {};
}

double pssMiB(pid_t pid) {
    const std::string kb = procField(pid, "smaps_rollup", "Pss:");
    return kb.empty() ? 0 : std::stod(kb) / 1024.0;
}

struct Agent {
    int index = 0;
    std::string dir;
    std::string host;
    int apiPort = 0;
    std::unique_ptr<BackgroundProcess> process;
    std::uintmax_t offset = 0;                  // of metrics.lp, read so far
    std::uintmax_t logOffset = 0;               // of log/agent.log, read so far
    double applied = 0;                         // last "registry (registry): namespaces" line seen
    std::map<std::string, double> firstSeen;    // plugin -> first result metric in this phase
    std::map<std::string, double> lastSeen;     // plugin -> last result metric
    std::uint64_t acknowledged = 0;             // points_in of earlier runs (before a restart)
    std::uint64_t dropped = 0;
    std::uint64_t lines = 0;                    // points in the sink file
};

class Fleet {
public:
    Fleet(std::string agentBinary, std::string moduleDir, int agents, int phaseSeconds)
        : agentBinary_(std::move(agentBinary)), moduleDir_(std::move(moduleDir)), phaseSeconds_(phaseSeconds) {
        for (int i = 0; i < kPlugins + 1; ++i) {
            git_.createRepo("fleet/p" + std::to_string(i),
                            "#!/bin/sh\necho '[{\"name\": \"v\", \"value\": " + std::to_string(i) + "}]'\n");
        }
        git_.startDaemon({"--verbose"});
        std::vector<RegistryFixture::Entry> entries;
        for (int i = 0; i < kPlugins; ++i) entries.push_back(pluginEntry("p" + std::to_string(i), kPluginInterval));
        registry_.setNamespace("fleet", "1", entries);
        chmod(root_.path().c_str(), 0755); // plugins run as nobody and must reach their checkouts
        for (int i = 0; i < agents; ++i) {
            Agent agent;
            agent.index = i;
            char host[32];
            std::snprintf(host, sizeof host, "fleet-%03d", i);
            agent.host = host;
            agent.dir = root_ / host;
            agent.apiPort = 20000 + i;
            writeConfig(agent);
            agents_.push_back(std::move(agent));
        }
    }

    void run() {
        std::cout << "fleet: " << agents_.size() << " agents, " << kPlugins << " plugins every " << kPluginInterval
                  << " s, registry_interval " << kRegistryInterval << " s, phases up to " << phaseSeconds_ << " s; "
                  << std::thread::hardware_concurrency() << " cores\n";
        watcher_ = std::thread([this] { watchGit(); });

        // --- start
        const double started = now();
        startAll();
        waitForPlugins(started, allPlugins(), "every agent runs every plugin");
        measureSteadyState();
        settle(started);
        report("start", started, now());

        // --- change
        readLogs(); // what the agents logged so far is not about the change
        const double changed = now();
        std::vector<RegistryFixture::Entry> entries;
        for (int i = 0; i < kPlugins - 1; ++i)
            entries.push_back(pluginEntry("p" + std::to_string(i), "p" + std::to_string(i) == kShortened ? 10 : kPluginInterval));
        entries.push_back(pluginEntry(kAdded, kPluginInterval));
        registry_.setNamespace("fleet", "1", entries);
        waitForApplied(changed);
        const double applied = waitForPlugins(changed, {kAdded}, "every agent runs the added plugin " + kAdded);
        // Let one more period pass, then check the removed plugin stopped everywhere.
        std::this_thread::sleep_for(std::chrono::seconds(kPluginInterval + 5));
        readSinks();
        int stillRunning = 0;
        for (const Agent& agent : agents_) {
            auto it = agent.lastSeen.find(kRemoved);
            if (it != agent.lastSeen.end() && it->second > changed + applied + 1) ++stillRunning;
        }
        std::cout << "  agents still running the removed plugin " << kRemoved << " a period after: " << stillRunning << "\n";
        settle(changed);
        report("change", changed, now());

        // --- mass restart
        scrapeAll();
        stopAll();
        const double restarted = now();
        for (Agent& agent : agents_) {
            agent.firstSeen.clear();
        }
        startAll();
        std::vector<std::string> after;
        for (int i = 0; i < kPlugins - 1; ++i) after.push_back("p" + std::to_string(i));
        after.push_back(kAdded);
        waitForPlugins(restarted, after, "every agent runs every plugin again");
        settle(restarted);
        report("restart", restarted, now());

        // --- the end: nothing acknowledged may be missing from the sink files
        scrapeAll();
        stopAll();
        readSinks();
        stopWatching_ = true;
        watcher_.join();
        std::uint64_t acknowledged = 0, lines = 0, dropped = 0;
        int short_ = 0;
        for (const Agent& agent : agents_) {
            acknowledged += agent.acknowledged;
            lines += agent.lines;
            dropped += agent.dropped;
            if (agent.lines < agent.acknowledged) ++short_;
        }
        std::cout << "points: acknowledged " << acknowledged << " (as counted by the agents before each stop), in the sink files "
                  << lines << ", dropped " << dropped << ", agents whose file holds fewer than they acknowledged: " << short_
                  << "\n";
        std::cout << "git: connections in all " << gitConnections() << ", at once at most " << gitPeak_
                  << "; clones or fetches at once by one agent at most " << perAgentPeak_ << " (max_parallel_clones 2)\n";
    }

    ~Fleet() {
        stopWatching_ = true;
        if (watcher_.joinable()) watcher_.join();
    }

private:
    void writeConfig(const Agent& agent) {
        const std::string text =
            "[agent]\n"
            "listen = \"127.0.0.1:" + std::to_string(agent.apiPort) + "\"\n"
            "hostname = \"" + agent.host + "\"\n"
            "ifaceprefix = [\"lo\"]\n"
            "registryaddr = \"" + registry_.url() + "\"\n"
            "registry_interval = " + std::to_string(kRegistryInterval) + "\n"
            "git = \"git://127.0.0.1:" + std::to_string(git_.port()) + "/%s.git\"\n"
            "pluginsdir = \"" + agent.dir + "/plugins\"\n"
            "pluginsuser = \"nobody\"\n"
            "statedir = \"" + agent.dir + "/state\"\n"
            "pidfile = \"" + agent.dir + "/agent.pid\"\n"
            "[modules]\n"
            "dir = \"" + moduleDir_ + "\"\n"
            "load = [\"source-netif\", \"source-host\", \"source-exec\", \"api-http\", \"sink-file\"]\n"
            "[log]\n"
            "logdir = \"" + agent.dir + "/log\"\n"
            "[sink-file]\n"
            "path = \"" + agent.dir + "/metrics.lp\"\n";
        std::system(("mkdir -p '" + agent.dir + "' && chmod 755 '" + agent.dir + "'").c_str());
        writeFile(agent.dir + "/agent.toml", text);
    }

    static std::vector<std::string> allPlugins() {
        std::vector<std::string> names;
        for (int i = 0; i < kPlugins; ++i) names.push_back("p" + std::to_string(i));
        return names;
    }

    void startAll() {
        for (Agent& agent : agents_) {
            agent.process = std::make_unique<BackgroundProcess>(
                std::vector<std::string>{agentBinary_, "run", "-f", agent.dir + "/agent.toml"}, agent.dir, agent.dir);
        }
        {
            std::lock_guard<std::mutex> lock(pidsMutex_);
            pids_.clear();
            for (const Agent& agent : agents_) pids_.insert(agent.process->pid());
        }
        std::this_thread::sleep_for(std::chrono::seconds(2));
        for (Agent& agent : agents_) {
            if (!agent.process->running())
                throw std::runtime_error(agent.host + " did not start: " + agent.process->out() + agent.process->err() +
                                         readFile(agent.dir + "/log/agent.log"));
        }
    }

    void stopAll() {
        for (Agent& agent : agents_) agent.process->signal(SIGTERM);
        int unclean = 0;
        for (Agent& agent : agents_) {
            if (agent.process->wait(std::chrono::seconds(60)) != 0) ++unclean;
        }
        if (unclean > 0) std::cout << "fleet: " << unclean << " agents did not stop with exit 0\n";
    }

    // Reads what each sink file gained: one line per point; result metrics "PLUGIN.<p>,".
    void readSinks() {
        const double t = now();
        for (Agent& agent : agents_) {
            forNewLines(agent.dir + "/metrics.lp", agent.offset, [&](const std::string& line) {
                ++agent.lines;
                if (line.rfind("PLUGIN.p", 0) != 0) return;
                const auto end = line.find(',');
                const std::string plugin = line.substr(7, end - 7);
                if (plugin.find('.') != std::string::npos) return; // PLUGIN.<p>.<metric>: data, not the result
                agent.firstSeen.emplace(plugin, t);
                agent.lastSeen[plugin] = t;
            });
        }
    }

    // Calls `each` for every whole line of `path` after `offset`, and moves `offset` past them; a
    // partial last line (still being written) is left for the next call.
    static void forNewLines(const std::string& path, std::uintmax_t& offset, const std::function<void(const std::string&)>& each) {
        std::ifstream in(path);
        in.seekg(static_cast<std::streamoff>(offset));
        std::string line;
        while (std::getline(in, line)) {
            if (in.eof()) break;
            offset += line.size() + 1;
            each(line);
        }
    }

    // A phase lasts at least two registry polls (interval + splay, twice): its figures then hold
    // the first polls after the event and the regular ones that follow.
    void settle(double since) {
        const double until = since + std::min<double>(phaseSeconds_, 2.0 * kRegistryInterval + 30);
        while (now() < until) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            readSinks();
        }
    }

    // Seconds until every agent logged that it applied a new registry answer.
    void waitForApplied(double since) {
        while (now() - since < phaseSeconds_) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            readLogs();
            double last = 0;
            int pending = 0;
            for (const Agent& agent : agents_) {
                if (agent.applied < since) ++pending;
                else last = std::max(last, agent.applied);
            }
            if (pending == 0) {
                std::cout << "  every agent applied the registry change after " << fixed1(last - since)
                          << " s (registry_interval " << kRegistryInterval << " s + splay up to 60 s)\n";
                return;
            }
        }
        std::cout << "  NOT every agent applied the registry change within " << phaseSeconds_ << " s\n";
    }

    void readLogs() {
        const double t = now();
        for (Agent& agent : agents_) {
            forNewLines(agent.dir + "/log/agent.log", agent.logOffset, [&](const std::string& line) {
                if (line.find("registry (registry): namespaces") != std::string::npos) agent.applied = t;
            });
        }
    }

    // Seconds since `since` until every agent's sink holds a result metric of each of `plugins`
    // seen after `since`; -1 when the phase ended first.
    double waitForPlugins(double since, const std::vector<std::string>& plugins, const std::string& what) {
        for (Agent& agent : agents_) {
            for (const std::string& plugin : plugins) agent.firstSeen.erase(plugin);
        }
        while (now() - since < phaseSeconds_) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            readSinks();
            double last = 0;
            bool all = true;
            for (const Agent& agent : agents_) {
                for (const std::string& plugin : plugins) {
                    auto it = agent.firstSeen.find(plugin);
                    if (it == agent.firstSeen.end()) all = false;
                    else last = std::max(last, it->second);
                }
            }
            if (all) {
                std::cout << "  " << what << " after " << fixed1(last - since) << " s\n";
                return last - since;
            }
        }
        int missing = 0;
        for (const Agent& agent : agents_) {
            for (const std::string& plugin : plugins) missing += agent.firstSeen.count(plugin) ? 0 : 1;
        }
        std::cout << "  NOT every agent got there within " << phaseSeconds_ << " s (" << what << "): " << missing
                  << " agent-plugin pairs missing\n";
        return -1;
    }

    void measureSteadyState() {
        std::vector<double> cpuBefore;
        for (const Agent& agent : agents_) cpuBefore.push_back(cpuSeconds(agent.process->pid()));
        const double t0 = now();
        std::this_thread::sleep_for(std::chrono::seconds(30));
        const double span = now() - t0;
        double pss = 0, pssMax = 0, cpu = 0;
        for (std::size_t i = 0; i < agents_.size(); ++i) {
            const double p = pssMiB(agents_[i].process->pid());
            pss += p;
            pssMax = std::max(pssMax, p);
            cpu += cpuSeconds(agents_[i].process->pid()) - cpuBefore[i];
        }
        const double n = static_cast<double>(agents_.size());
        std::cout << "  steady state: PSS per agent " << fixed1(pss / n) << " MiB (max " << fixed1(pssMax) << "), in all "
                  << fixed1(pss) << " MiB; CPU per agent " << fixed2(100.0 * cpu / n / span) << " % of a core, in all "
                  << fixed2(100.0 * cpu / span) << " %\n";
    }

    void scrapeAll() {
        for (Agent& agent : agents_) {
            try {
                Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(agent.apiPort));
                session.setTimeout(Poco::Timespan(10, 0));
                Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/metrics", Poco::Net::HTTPMessage::HTTP_1_1);
                session.sendRequest(request);
                Poco::Net::HTTPResponse response;
                std::string body;
                Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
                agent.acknowledged += counter(body, "agent_sink_points_in_total");
                agent.dropped += counter(body, "agent_sink_points_dropped_total");
            } catch (const std::exception& e) {
                std::cout << "fleet: " << agent.host << ": /metrics: " << e.what() << "\n";
            }
        }
    }

    static std::uint64_t counter(const std::string& text, const std::string& name) {
        std::uint64_t sum = 0;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(name + "{", 0) == 0) sum += std::stoull(line.substr(line.rfind(' ') + 1));
        }
        return sum;
    }

    // Per-second registry requests in [from, from + phase): the busiest second against the mean of
    // the minute around it (30 s either side, within the phase).
    void report(const std::string& phase, double from, double to) {
        const long seconds = static_cast<long>(to - from);
        std::map<long, int> perSecond;
        for (double t : registry_.requestTimes()) {
            if (t >= from && t < from + static_cast<double>(seconds)) ++perSecond[static_cast<long>(t - from)];
        }
        printBusiest("registry requests/s", phase, perSecond, seconds, 3); // a poll: namespaces, entries, report
        std::map<long, int> git;
        {
            std::lock_guard<std::mutex> lock(gitMutex_);
            for (double t : gitTimes_) {
                if (t >= from && t < from + static_cast<double>(seconds)) ++git[static_cast<long>(t - from)];
            }
        }
        printBusiest("git connections/s", phase, git, seconds, 1);
    }

    // The busiest second against the mean of the minute around it and of the busy window (first
    // to last second with any request). Events that arrive at random, spread evenly, already
    // make a busiest second above the mean: "random" is what Poisson arrivals at the busy
    // window's rate would give as the busiest of its seconds (the 95th percentile), to tell
    // noise from a stampede.
    void printBusiest(const std::string& what, const std::string& phase, const std::map<long, int>& perSecond,
                      long seconds, int clump) {
        if (perSecond.empty()) {
            std::cout << "  " << phase << ": " << what << ": none\n";
            return;
        }
        long busiest = perSecond.begin()->first;
        int total = 0;
        for (const auto& [second, count] : perSecond) {
            total += count;
            if (count > perSecond.at(busiest)) busiest = second;
        }
        const long lo = std::max<long>(0, busiest - 30);
        const long hi = std::min<long>(seconds - 1, lo + 59);
        int around = 0;
        for (long s = lo; s <= hi; ++s) around += perSecond.count(s) ? perSecond.at(s) : 0;
        const double mean = static_cast<double>(around) / static_cast<double>(hi - lo + 1);
        const long first = perSecond.begin()->first;
        const long last = perSecond.rbegin()->first;
        const double busyMean = static_cast<double>(total) / static_cast<double>(last - first + 1);
        std::cout << "  " << phase << ": " << what << ": " << total << " in all, busiest second " << perSecond.at(busiest)
                  << " (at +" << busiest << " s), mean over the minute around it " << fixed2(mean) << " (ratio "
                  << fixed2(perSecond.at(busiest) / mean) << "), mean over the busy window +" << first << "..+" << last
                  << " s " << fixed2(busyMean) << " (ratio " << fixed2(perSecond.at(busiest) / busyMean)
                  << "); random arrivals would give a busiest second of " << randomBusiest(busyMean / clump, last - first + 1) * clump
                  << " (95th percentile)\n";
    }

    // The 95th percentile of the largest of `seconds` Poisson(`rate`) counts.
    static int randomBusiest(double rate, long seconds) {
        double cdf = 0;
        double term = std::exp(-rate);
        for (int k = 0; k < 10000; ++k) {
            cdf += term;
            if (std::pow(cdf, static_cast<double>(seconds)) >= 0.95) return k;
            term *= rate / (k + 1);
        }
        return 10000;
    }

    // Follows git daemon's log (--verbose: "[pid] Connection from ...", "[pid] Disconnected") and,
    // every 100 ms, the git helpers each agent runs, for the per-agent bound.
    void watchGit() {
        std::uintmax_t offset = 0;
        int open = 0;
        while (!stopWatching_) {
            std::ifstream in(git_.daemonLog());
            in.seekg(static_cast<std::streamoff>(offset));
            std::string line;
            const double t = now();
            while (std::getline(in, line)) {
                if (in.eof()) break;
                offset += line.size() + 1;
                if (line.find("Connection from") != std::string::npos) {
                    std::lock_guard<std::mutex> lock(gitMutex_);
                    gitTimes_.push_back(t);
                    ++open;
                } else if (line.find("Disconnected") != std::string::npos) {
                    --open;
                }
                gitPeak_ = std::max(gitPeak_, open);
            }
            samplePerAgentClones();
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

    void samplePerAgentClones() {
        std::set<pid_t> pids;
        {
            std::lock_guard<std::mutex> lock(pidsMutex_);
            pids = pids_;
        }
        std::map<pid_t, int> helpers;
        DIR* proc = opendir("/proc");
        if (proc == nullptr) return;
        while (dirent* entry = readdir(proc)) {
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
            const pid_t pid = std::atoi(entry->d_name);
            if (readFile("/proc/" + std::to_string(pid) + "/comm") != "source-exec-git\n") continue;
            const std::vector<std::string> stat = procStat(pid);
            const pid_t parent = stat.size() > 1 ? std::atoi(stat[1].c_str()) : 0;
            if (pids.count(parent)) perAgentPeak_ = std::max(perAgentPeak_, ++helpers[parent]);
        }
        closedir(proc);
    }

    std::size_t gitConnections() {
        std::lock_guard<std::mutex> lock(gitMutex_);
        return gitTimes_.size();
    }

    static std::string fixed1(double v) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.1f", v);
        return buffer;
    }
    static std::string fixed2(double v) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.2f", v);
        return buffer;
    }

    std::string agentBinary_;
    std::string moduleDir_;
    int phaseSeconds_;
    TempDir root_;
    GitServer git_;
    RegistryFixture registry_;
    std::vector<Agent> agents_;
    std::thread watcher_;
    std::atomic<bool> stopWatching_{false};
    std::mutex gitMutex_;
    std::vector<double> gitTimes_;
    int gitPeak_ = 0;
    std::mutex pidsMutex_;
    std::set<pid_t> pids_;
    int perAgentPeak_ = 0;
};

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: fleet_driver AGENT_BINARY MODULE_DIR [AGENTS] [PHASE_SECONDS]\n";
        return 2;
    }
    const int agents = argc > 3 ? std::atoi(argv[3]) : 200;
    const int phase = argc > 4 ? std::atoi(argv[4]) : 200;
    if (agents < 1 || agents > 2000 || phase < 30) {
        std::cerr << "fleet_driver: AGENTS must be 1 to 2000 and PHASE_SECONDS at least 30\n";
        return 2;
    }
    try {
        Fleet fleet(argv[1], argv[2], agents, phase);
        fleet.run();
    } catch (const std::exception& e) {
        std::cerr << "fleet_driver: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
