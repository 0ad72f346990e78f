#include "History.h"

#include "MetricBus.h"

#include <agent/KernelFile.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cmath>
#include <limits>
#include <sstream>

namespace agent {

namespace {
constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();
const char* const kCpuSeries = "host.cpu_percent";
const char* const kMemSeries = "host.mem_percent";
} // namespace

std::optional<CpuTimes> parseProcStat(const std::string& text) {
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice": guest time is already
    // counted in user and nice, so only the first eight fields make the total.
    if (text.rfind("cpu ", 0) != 0) return std::nullopt;
    std::istringstream line(text.substr(4, text.find('\n') - 4)); // npos - 4 still means "to the end"
    std::uint64_t fields[8] = {};
    int read = 0;
    for (; read < 8 && (line >> fields[read]); ++read) {
    }
    if (read < 4) return std::nullopt; // user nice system idle are in every kernel's line
    CpuTimes times;
    for (int i = 0; i < read; ++i) times.total += fields[i];
    times.busy = times.total - fields[3] - (read > 4 ? fields[4] : 0);
    return times;
}

std::optional<double> cpuBusyPercent(const CpuTimes& before, const CpuTimes& after) {
    if (after.total <= before.total || after.busy < before.busy) return std::nullopt;
    const double percent = 100.0 * static_cast<double>(after.busy - before.busy) / static_cast<double>(after.total - before.total);
    return std::min(100.0, percent);
}

std::optional<double> memUsedPercent(const std::string& meminfo) {
    auto field = [&meminfo](const std::string& name) -> std::optional<double> {
        std::istringstream lines(meminfo);
        std::string key;
        double kib = 0;
        while (lines >> key >> kib) {
            if (key == name + ":") return kib;
            lines.ignore(std::numeric_limits<std::streamsize>::max(), '\n'); // the unit, "kB"
        }
        return std::nullopt;
    };
    const auto total = field("MemTotal");
    const auto available = field("MemAvailable");
    if (!total || !available || *total <= 0 || *available > *total) return std::nullopt;
    return 100.0 * (*total - *available) / *total;
}

HistoryRing::HistoryRing(std::vector<std::string> series, std::size_t capacity)
    : series_(std::move(series)), capacity_(std::max<std::size_t>(1, capacity)), times_(capacity_, 0),
      values_(capacity_ * series_.size(), kNoValue) {}

void HistoryRing::push(std::int64_t time, const std::vector<double>& values) {
    times_[next_] = time;
    for (std::size_t s = 0; s < series_.size(); ++s) values_[next_ * series_.size() + s] = s < values.size() ? values[s] : kNoValue;
    next_ = (next_ + 1) % capacity_;
    count_ = std::min(capacity_, count_ + 1);
}

std::size_t HistoryRing::index(std::size_t age) const { return (next_ + capacity_ - count_ + age) % capacity_; }

std::vector<std::int64_t> HistoryRing::times() const {
    std::vector<std::int64_t> out;
    out.reserve(count_);
    for (std::size_t age = 0; age < count_; ++age) out.push_back(times_[index(age)]);
    return out;
}

std::vector<double> HistoryRing::values(std::size_t series) const {
    std::vector<double> out;
    out.reserve(count_);
    for (std::size_t age = 0; age < count_; ++age) out.push_back(values_[index(age) * series_.size() + series]);
    return out;
}

std::size_t HistoryRing::bytesFor(std::size_t series, std::size_t capacity) {
    return capacity * (sizeof(std::int64_t) + series * sizeof(double));
}

HistorySampler::HistorySampler(CounterReader counters, Options options)
    : counters_(std::move(counters)), options_(std::move(options)) {}

HistorySampler::~HistorySampler() { stop(); }

HistorySampler::CounterReader HistorySampler::sinkCounters(const MetricBus& bus) {
    return [&bus] {
        // The bus's sink list is fixed once it started, which is before the sampler starts.
        std::vector<Counter> counters;
        for (const SinkChannelPtr& sink : bus.sinks()) {
            counters.push_back({"sink." + sink->name() + ".in", sink->counters().in.load()});
            counters.push_back({"sink." + sink->name() + ".out", sink->counters().out.load()});
        }
        return counters;
    };
}

void HistorySampler::start() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { loop(); });
}

void HistorySampler::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void HistorySampler::loop() {
    using Clock = std::chrono::steady_clock;
    // Due times keep their phase: one sample every interval, however long a sample took.
    Clock::time_point due = Clock::now();
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        const double monotonic = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
        sample(static_cast<std::int64_t>(std::time(nullptr)), monotonic);
        lock.lock();
        due += options_.interval;
        wake_.wait_until(lock, due, [this] { return stopping_; });
    }
}

void HistorySampler::sample(std::int64_t time, double monotonicSeconds) {
    // Read everything before taking the lock: json() must not wait on /proc.
    const std::vector<Counter> counters = counters_ ? counters_() : std::vector<Counter>{};
    std::string text;
    std::optional<CpuTimes> cpu;
    if (readWholeFile(options_.procDir + "/stat", text) == 0) cpu = parseProcStat(text);
    std::optional<double> mem;
    if (readWholeFile(options_.procDir + "/meminfo", text) == 0) mem = memUsedPercent(text);

    std::lock_guard<std::mutex> lock(mutex_);
    if (!ring_) {
        std::vector<std::string> names = {kCpuSeries, kMemSeries};
        for (const Counter& counter : counters) names.push_back(counter.name);
        ring_ = std::make_unique<HistoryRing>(std::move(names), options_.capacity);
        lastCounters_.assign(counters.size(), std::nullopt);
    }
    const std::vector<std::string>& names = ring_->series();
    std::vector<double> values(names.size(), kNoValue);
    if (cpu && lastCpu_) {
        if (auto percent = cpuBusyPercent(*lastCpu_, *cpu)) values[0] = *percent;
    }
    if (mem) values[1] = *mem;
    const double elapsed = monotonicSeconds - lastMonotonic_;
    for (std::size_t s = 2; s < names.size(); ++s) {
        std::optional<std::uint64_t> now;
        for (const Counter& counter : counters)
            if (counter.name == names[s]) now = counter.value;
        std::optional<std::uint64_t>& last = lastCounters_[s - 2];
        // A counter that went back (it cannot, but a rate below zero would be a lie) gives no value.
        if (now && last && *now >= *last && elapsed > 0) values[s] = static_cast<double>(*now - *last) / elapsed;
        last = now;
    }
    lastCpu_ = cpu;
    lastMonotonic_ = monotonicSeconds;
    ring_->push(time, values);
}

std::string HistorySampler::json() const {
    Poco::JSON::Object out;
    Poco::JSON::Array::Ptr times = new Poco::JSON::Array;
    Poco::JSON::Object::Ptr series = new Poco::JSON::Object;
    std::lock_guard<std::mutex> lock(mutex_);
    out.set("interval_seconds", static_cast<Poco::Int64>(options_.interval.count()));
    out.set("capacity", static_cast<Poco::UInt64>(options_.capacity));
    out.set("memory_bytes", static_cast<Poco::UInt64>(ring_ ? HistoryRing::bytesFor(ring_->series().size(), ring_->capacity()) : 0));
    if (ring_) {
        for (std::int64_t time : ring_->times()) times->add(static_cast<Poco::Int64>(time));
        for (std::size_t s = 0; s < ring_->series().size(); ++s) {
            Poco::JSON::Array::Ptr values = new Poco::JSON::Array;
            for (double value : ring_->values(s)) {
                // Two decimals are plenty for a chart and keep the answer small.
                if (std::isnan(value)) values->add(Poco::Dynamic::Var());
                else values->add(std::round(value * 100) / 100);
            }
            series->set(ring_->series()[s], values);
        }
    }
    out.set("times", times);
    out.set("series", series);
    std::ostringstream text;
    out.stringify(text);
    return text.str();
}

} // namespace agent
