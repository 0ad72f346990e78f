// Throughput of the metric bus, end to end: points/s from 1 and 4 publishing threads through
// MetricBus::publish (host tag + timestamp rule, encoding, append to the sink's disk spool in a
// temporary directory, fsync once a second, the memory cache) to a null sink's writer thread.
// Target: >= 2 M points/s. Touches nothing outside the process.
// BM_BusDrainBacklog: how fast a backlog already in the spool drains through a peer with a
// round trip per write, with 1, 2 or 4 writes in flight (SinkBatching::concurrency).
//
// Why not Google Benchmark's ->Threads(N): it times each thread on its own clock and averages,
// and the sink's writer thread is on no benchmark clock at all, so a figure from it says how fast
// points enter the queue, not how fast they get through. Here one benchmark thread owns the clock:
// an iteration starts N publisher threads, joins them, then waits until the null sink has counted
// every point published, and only then stops the clock. Thread start-up (~tens of microseconds)
// is inside the clock, against an iteration of tens of milliseconds.
#include "BatchCodec.h"
#include "MetricBus.h"
#include "Spool.h"

#include <agent/Metric.h>
#include <agent/Module.h>
#include <agent/ModuleConfig.h>

#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/TemporaryFile.h>

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kPointsPerBatch = 1000;
// Batches each publisher thread sends per iteration: 20 000 points, so an iteration is long
// enough that thread start-up and the final wake-up are noise.
constexpr std::size_t kBatchesPerThread = 20;

// Accepts everything and counts it; the bench waits on the count to know delivery is complete.
class NullSink : public agent::Sink {
public:
    const agent::ConfigSchema& configSchema() const override {
        static const agent::ConfigSchema schema;
        return schema;
    }
    void configure(const agent::ModuleConfig&) override {}

    agent::WriteResult write(const agent::Batch& batch) override {
        {
            std::lock_guard<std::mutex> lock(countMutex_);
            points_ += batch.size();
        }
        // One notify per 1000-point batch; glibc does not enter the kernel when nobody waits.
        countChanged_.notify_all();
        return agent::WriteOutcome::Done;
    }

    void waitForPoints(std::uint64_t total) {
        std::unique_lock<std::mutex> lock(countMutex_);
        countChanged_.wait(lock, [&] { return points_ >= total; });
    }

private:
    std::mutex countMutex_; // guards points_
    std::condition_variable countChanged_;
    std::uint64_t points_ = 0;
};

// What source-netif emits for one interface (ns from the host's namespaces, interface tag,
// one double "value", timestamp 0 so the bus sets it); the bus adds the host tag.
// With roomForHost the tag list is reserved for two tags, so that normalizeForSink's host tag
// does not reallocate it; source-netif (through makePoint + setTag) does not do that today.
agent::Batch makeBatch(std::size_t salt, bool roomForHost = false) {
    static const std::array<const char*, 11> names = {
        "net.in",         "net.out",        "net.in.packets", "net.out.packets", "net.in.errors",  "net.out.errors",
        "net.in.dropped", "net.out.dropped", "net.speed",     "net.in.percent",  "net.out.percent"};
    static const std::array<const char*, 4> interfaces = {"eth0", "eth1", "ens3", "wlan0"};
    agent::Batch batch;
    batch.reserve(kPointsPerBatch);
    for (std::size_t i = 0; i < kPointsPerBatch; ++i) {
        agent::Metric metric =
            agent::makePoint("local", names[i % names.size()], 1234567.0 + static_cast<double>(i + salt), 0);
        if (roomForHost) metric.tags.reserve(2);
        metric.setTag("interface", interfaces[(i / names.size()) % interfaces.size()]);
        batch.push_back(std::move(metric));
    }
    return batch;
}

struct BusUnderTest {
    NullSink sink;
    NullSink second; // with two sinks: every point goes to both
    const std::string spoolDir = Poco::TemporaryFile::tempName();
    agent::MetricBus bus{"bench-host", Poco::Logger::get("bench")};

    explicit BusUnderTest(int sinks = 1) {
        agent::SinkChannel::Options options;
        options.cachePoints = 1'000'000; // far above one iteration's 80 000 points: the writer reads no disk
        options.spool.directory = spoolDir + "/null";
        options.spool.maxBytes = 4ull << 30; // nothing may drop
        bus.addSink("null", sink, options);
        if (sinks > 1) {
            options.spool.directory = spoolDir + "/second";
            bus.addSink("second", second, options);
        }
        bus.start();
    }
    ~BusUnderTest() {
        bus.stop();
        Poco::File(spoolDir).remove(true);
    }
};

// Runs after the timed loop. The null sink counts a batch inside write(), the channel's `out`
// counter only after write() returns, so wait (untimed) for `out` to catch up before reading it.
void reportCounters(benchmark::State& state, const BusUnderTest& under, std::uint64_t published,
                    std::uint64_t accepted) {
    const agent::SinkCounters& counters = under.bus.sinks().front()->counters();
    while (counters.out.load() + counters.dropped.load() < published)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    state.SetItemsProcessed(static_cast<std::int64_t>(published));
    state.counters["accepted"] = static_cast<double>(accepted);
    state.counters["delivered"] = static_cast<double>(counters.out.load());
    state.counters["dropped"] = static_cast<double>(counters.dropped.load());
}

// Each publisher builds every batch it sends, as a source does: the figure includes allocating
// and filling 1000 Metrics per batch.
void publishConstructed(benchmark::State& state, int sinks) {
    const auto publishers = static_cast<std::size_t>(state.range(0));
    BusUnderTest under(sinks);
    std::uint64_t published = 0;
    std::atomic<std::uint64_t> accepted{0};
    for (auto _ : state) {
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < publishers; ++t) {
            threads.emplace_back([&, t] {
                std::uint64_t taken = 0;
                for (std::size_t b = 0; b < kBatchesPerThread; ++b) taken += under.bus.publish(makeBatch(t + b)).accepted;
                accepted += taken;
            });
        }
        for (std::thread& thread : threads) thread.join();
        published += publishers * kBatchesPerThread * kPointsPerBatch;
        under.sink.waitForPoints(published);
        if (sinks > 1) under.second.waitForPoints(published);
    }
    reportCounters(state, under, published, accepted);
}

void BM_BusPublishConstructed(benchmark::State& state) { publishConstructed(state, 1); }
// The same into two sinks (each with its own spool and writer): what a second sink costs.
void BM_BusPublishConstructedTwoSinks(benchmark::State& state) { publishConstructed(state, 2); }

// The batches are built before the clock starts and moved into publish(): the bus alone
// (normalizeForSink, queueing, the writer thread, freeing the delivered batch).
void publishPrebuilt(benchmark::State& state, bool roomForHost) {
    const auto publishers = static_cast<std::size_t>(state.range(0));
    BusUnderTest under;
    std::uint64_t published = 0;
    std::atomic<std::uint64_t> accepted{0};
    std::vector<std::vector<agent::Batch>> batches(publishers);
    for (auto _ : state) {
        // The previous iteration ended with the sink idle, so nothing runs while this is built.
        state.PauseTiming();
        for (std::size_t t = 0; t < publishers; ++t) {
            batches[t].clear();
            for (std::size_t b = 0; b < kBatchesPerThread; ++b) batches[t].push_back(makeBatch(t + b, roomForHost));
        }
        state.ResumeTiming();
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < publishers; ++t) {
            threads.emplace_back([&, t] {
                std::uint64_t taken = 0;
                for (agent::Batch& batch : batches[t]) taken += under.bus.publish(std::move(batch)).accepted;
                accepted += taken;
            });
        }
        for (std::thread& thread : threads) thread.join();
        published += publishers * kBatchesPerThread * kPointsPerBatch;
        under.sink.waitForPoints(published);
    }
    reportCounters(state, under, published, accepted);
}

// Points exactly as source-netif builds them.
void BM_BusPublishPrebuiltMoved(benchmark::State& state) { publishPrebuilt(state, false); }
// The same with room for the host tag: what the bus costs without a reallocation per point in
// normalizeForSink, which is most of the difference (malloc/free contended with the writer).
void BM_BusPublishPrebuiltMovedHostRoom(benchmark::State& state) { publishPrebuilt(state, true); }

// A sink whose peer takes `latency` per write (a network round trip), so that what limits a
// backlog's drain is the number of writes in flight.
class SlowSink : public NullSink {
public:
    explicit SlowSink(std::chrono::microseconds latency, unsigned concurrency, std::size_t maxPoints)
        : latency_(latency), concurrency_(concurrency), maxPoints_(maxPoints) {}
    agent::WriteResult write(const agent::Batch& batch) override {
        std::this_thread::sleep_for(latency_);
        return NullSink::write(batch);
    }
    agent::SinkBatching batching() const override {
        agent::SinkBatching batching;
        batching.maxPoints = maxPoints_;
        batching.maxDelay = Poco::Timespan(1, 0); // never waited for while a backlog is queued
        batching.concurrency = concurrency_;
        return batching;
    }

private:
    std::chrono::microseconds latency_;
    unsigned concurrency_;
    std::size_t maxPoints_;
};

// Drains a backlog of 100 000 points already in the spool (a restart after an outage) through a
// peer with 2 ms per write, in writes of 5000 points, with 1, 2 or 4 writes in flight: points/s.
void BM_BusDrainBacklog(benchmark::State& state) {
    const auto concurrency = static_cast<unsigned>(state.range(0));
    constexpr std::size_t kBatches = 100;
    std::uint64_t drained = 0;
    for (auto _ : state) {
        state.PauseTiming();
        const std::string spoolDir = Poco::TemporaryFile::tempName();
        SlowSink sink(std::chrono::microseconds(2000), concurrency, 5000);
        agent::SinkChannel::Options options;
        options.spool.directory = spoolDir;
        options.spool.maxBytes = 4ull << 30;
        options.batching = sink.batching();
        {
            agent::Spool spool(options.spool, Poco::Logger::get("bench"));
            for (std::size_t b = 0; b < kBatches; ++b) {
                agent::Batch batch = makeBatch(b);
                for (agent::Metric& metric : batch) metric.timestamp = 1700000000;
                std::string payload;
                agent::encodeBatch(batch, payload);
                spool.append(payload, static_cast<std::uint32_t>(batch.size()), true);
            }
        }
        state.ResumeTiming();
        {
            agent::MetricBus bus{"bench-host", Poco::Logger::get("bench")};
            bus.addSink("slow", sink, options);
            bus.start();
            sink.waitForPoints(kBatches * kPointsPerBatch);
            state.PauseTiming();
            bus.stop();
        }
        drained += kBatches * kPointsPerBatch;
        Poco::File(spoolDir).remove(true);
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(drained));
}

// Real time, because the work is on threads the benchmark thread only waits for; process CPU
// time, so the CPU column shows what all threads together spent (publishers + writer).
BENCHMARK(BM_BusPublishConstructed)
    ->ArgName("publishers")
    ->Arg(1)
    ->Arg(4)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BusPublishConstructedTwoSinks)
    ->ArgName("publishers")
    ->Arg(1)
    ->Arg(4)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BusPublishPrebuiltMoved)
    ->ArgName("publishers")
    ->Arg(1)
    ->Arg(4)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BusDrainBacklog)
    ->ArgName("concurrency")
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BusPublishPrebuiltMovedHostRoom)
    ->ArgName("publishers")
    ->Arg(1)
    ->Arg(4)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

} // namespace
