// Throughput of LineProtocolEncoder on one core: a batch of 1000 points encoded into a reused
// string, as sink-file does per batch. Target: >= 5 M points/s. Touches nothing outside the process.
#include <agent/LineProtocol.h>
#include <agent/Metric.h>

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <string>

namespace {

constexpr std::size_t kPointsPerBatch = 1000;
constexpr std::int64_t kTimestamp = 1'700'000'000;

// sink-file's default: the namespace goes out as the first tag, "ns".
agent::LineProtocolEncoder makeEncoder() { return agent::LineProtocolEncoder({"ns"}); }

// A source-netif point as a sink receives it, after the bus's rule: ns, host and interface
// tags, one double "value", a timestamp in seconds. Nothing needs escaping.
agent::Batch typicalBatch() {
    static const std::array<const char*, 4> names = {"net.in", "net.out", "net.in.packets", "net.out.percent"};
    agent::Batch batch;
    batch.reserve(kPointsPerBatch);
    for (std::size_t i = 0; i < kPointsPerBatch; ++i) {
        // Doubles with a fractional part: to_chars' shortest round-trip form is the costly case.
        agent::Metric metric = agent::makePoint("local", names[i % names.size()], 1234.5678 * static_cast<double>(i + 1),
                                                kTimestamp);
        metric.setTag("interface", "eth0");
        metric.setTag("host", "bench-host");
        batch.push_back(std::move(metric));
    }
    return batch;
}

// A heavier point: 4 tags (one value with a space and a comma to escape), a double, an int and a
// string field holding quotes and a backslash.
agent::Batch wideBatch() {
    agent::Batch batch;
    batch.reserve(kPointsPerBatch);
    for (std::size_t i = 0; i < kPointsPerBatch; ++i) {
        agent::Metric metric = agent::makePoint("local", "disk.usage", 42.125 + static_cast<double>(i), kTimestamp);
        metric.setTag("host", "bench-host");
        metric.setTag("device", "nvme0n1p2");
        metric.setTag("mount", "/var/lib/my data,2");
        metric.setTag("fstype", "ext4");
        metric.addField("inodes_used", static_cast<std::int64_t>(1'048'576 + i));
        metric.addField("status", std::string(R"(mounted "rw" at C:\data)"));
        batch.push_back(std::move(metric));
    }
    return batch;
}

void encode(benchmark::State& state, const agent::Batch& batch) {
    const agent::LineProtocolEncoder encoder = makeEncoder();
    std::string out;
    std::size_t bytes = 0;
    for (auto _ : state) {
        out.clear(); // keeps the capacity, as a sink reusing its buffer would
        benchmark::DoNotOptimize(encoder.append(out, batch));
        benchmark::ClobberMemory();
        bytes += out.size();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch.size()));
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["bytes_per_point"] = static_cast<double>(out.size()) / static_cast<double>(batch.size());
}

void BM_EncodeTypical(benchmark::State& state) { encode(state, typicalBatch()); }
void BM_EncodeWideEscaped(benchmark::State& state) { encode(state, wideBatch()); }

BENCHMARK(BM_EncodeTypical)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EncodeWideEscaped)->Unit(benchmark::kMicrosecond);

} // namespace
