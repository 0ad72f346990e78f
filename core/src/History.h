// The short history behind the status page's charts (docs/ARCHITECTURE.md §11.1): every
// `interval` (10 s) the core samples each sink's points in and out (as points per second, from the
// counters' deltas) and the host's CPU busy and memory used percentages (read from /proc by the
// core itself, whether source-host is loaded or not), into a fixed ring of `capacity` (90) samples,
// 15 minutes. The ring is allocated once, at the first sample, and never grows: its size is
// HistoryRing::bytesFor(series, capacity): 2,160 bytes plus 1,440 per sink (§11.1).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace agent {

class MetricBus;

// Jiffies of the first "cpu" line of /proc/stat: busy = total - idle - iowait.
struct CpuTimes {
    std::uint64_t busy = 0;
    std::uint64_t total = 0;
};
std::optional<CpuTimes> parseProcStat(const std::string& text);
// Percent of the CPU time between two readings that was busy; nullopt when no time passed.
std::optional<double> cpuBusyPercent(const CpuTimes& before, const CpuTimes& after);
// 100 × (MemTotal − MemAvailable) / MemTotal from /proc/meminfo; nullopt when either is missing.
std::optional<double> memUsedPercent(const std::string& meminfo);

// A fixed ring of samples: one time and one value per series each; NaN = no value (shown as null).
class HistoryRing {
public:
    HistoryRing(std::vector<std::string> series, std::size_t capacity);
    // Appends one sample; `values` has one entry per series (missing ones are NaN). The oldest
    // sample is overwritten once the ring is full.
    void push(std::int64_t time, const std::vector<double>& values);
    std::size_t size() const { return count_; }
    std::size_t capacity() const { return capacity_; }
    const std::vector<std::string>& series() const { return series_; }
    // Oldest first.
    std::vector<std::int64_t> times() const;
    std::vector<double> values(std::size_t series) const;
    // The bytes the ring's samples take (times and values), fixed at construction.
    static std::size_t bytesFor(std::size_t series, std::size_t capacity);

private:
    std::size_t index(std::size_t age) const; // age 0 = the oldest kept
    std::vector<std::string> series_;
    std::size_t capacity_;
    std::vector<std::int64_t> times_;
    std::vector<double> values_; // [slot * series + s]
    std::size_t next_ = 0;
    std::size_t count_ = 0;
};

// Samples the counters it is given and the host's CPU and memory into a HistoryRing on a thread of
// its own, and renders the ring as JSON for GET /me/history.
class HistorySampler {
public:
    // One cumulative counter, e.g. a sink's points_in, sampled into series `name` as a rate.
    struct Counter {
        std::string name;
        std::uint64_t value = 0;
    };
    using CounterReader = std::function<std::vector<Counter>()>;

    struct Options {
        std::chrono::seconds interval{10};
        std::size_t capacity = 90;
        std::string procDir = "/proc"; // tests point it at fixture files
    };

    HistorySampler(CounterReader counters, Options options);
    ~HistorySampler(); // stops
    HistorySampler(const HistorySampler&) = delete;
    HistorySampler& operator=(const HistorySampler&) = delete;

    // Reads each sink's points in and out: series "sink.<name>.in" and "sink.<name>.out".
    static CounterReader sinkCounters(const MetricBus& bus);

    // Takes one sample now and then one every interval, on its own thread.
    void start();
    void stop();

    // One sample at wall time `time` (seconds) and monotonic time `monotonicSeconds`, which the
    // rates divide by. The first sample only sets the baselines (its rates and CPU are null). The
    // series are fixed by the first sample: counters that appear later are left out.
    void sample(std::int64_t time, double monotonicSeconds);

    // {"interval_seconds", "capacity", "memory_bytes", "times": [...], "series": {name: [...]}}
    std::string json() const;

private:
    void loop();

    CounterReader counters_;
    const Options options_;
    mutable std::mutex mutex_; // guards everything below
    std::unique_ptr<HistoryRing> ring_;
    std::vector<std::optional<std::uint64_t>> lastCounters_;
    std::optional<CpuTimes> lastCpu_;
    double lastMonotonic_ = 0;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace agent
