// source-host: the cost of one full collection round (every group: cpu, mem, disk, fs, ps,
// kernel, alive) on this machine's real /proc, /sys and statvfs, and of each group alone, in
// microseconds. Every round after the first computes rates, as in a running agent. The figures
// depend on the machine: ps reads one file per process, fs calls statvfs per file system.
#include "HostCollector.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

namespace {

using agent::host::Group;

void collectRounds(benchmark::State& state, const std::vector<Group>& groups) {
    agent::host::HostCollector collector(groups, agent::host::HostOptions{});
    agent::Batch batch;
    collector.collectAll(agent::host::Tick::now(), batch); // the baseline
    std::size_t points = 0;
    for (auto _ : state) {
        batch.clear();
        const agent::host::CollectReport report = collector.collectAll(agent::host::Tick::now(), batch);
        benchmark::DoNotOptimize(report);
        points = batch.size();
    }
    state.counters["points"] = static_cast<double>(points);
}

void BM_HostCollectionRound(benchmark::State& state) {
    collectRounds(state, std::vector<Group>(agent::host::kAllGroups.begin(), agent::host::kAllGroups.end()));
}
BENCHMARK(BM_HostCollectionRound)->Unit(benchmark::kMicrosecond);

void BM_HostGroup(benchmark::State& state) {
    const Group group = agent::host::kAllGroups.at(static_cast<std::size_t>(state.range(0)));
    state.SetLabel(agent::host::groupName(group));
    collectRounds(state, {group});
}
BENCHMARK(BM_HostGroup)
    ->DenseRange(0, static_cast<int>(agent::host::kAllGroups.size()) - 1)
    ->Unit(benchmark::kMicrosecond);

} // namespace
