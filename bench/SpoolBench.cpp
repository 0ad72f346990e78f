// The spool's disk throughput: appending records (MB/s of payload) next to a plain sequential
// write(2) of the same bytes in the same run (target: append >= 0.7x plain), and replaying them
// (read + checksum + decode) as a restart after an outage does. Files go to $TMPDIR.
#include "BatchCodec.h"
#include "Spool.h"

#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/TemporaryFile.h>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

namespace {

// One record: a 1000-point batch as source-netif publishes it, encoded as the bus does (~56 KB).
const std::string& recordPayload() {
    static const std::string payload = [] {
        agent::Batch batch;
        for (int i = 0; i < 1000; ++i) {
            agent::Metric m = agent::makePoint("local", "net.in.packets", 1234.5 + i, 1700000000);
            m.setTag("host", "bench-host");
            m.setTag("interface", "eth" + std::to_string(i % 4));
            batch.push_back(std::move(m));
        }
        std::string out;
        agent::encodeBatch(batch, out);
        return out;
    }();
    return payload;
}

constexpr int kRecords = 2000; // ~110 MB per iteration

agent::Spool::Options spoolOptions(const std::string& dir, agent::Spool::Fsync fsync) {
    agent::Spool::Options options;
    options.directory = dir;
    options.maxBytes = 4ull << 30;
    options.segmentBytes = 8ull << 20;
    options.fsync = fsync;
    return options;
}

void BM_SpoolAppend(benchmark::State& state) {
    const auto fsync = static_cast<agent::Spool::Fsync>(state.range(0));
    const std::string& payload = recordPayload();
    for (auto _ : state) {
        const std::string dir = Poco::TemporaryFile::tempName();
        {
            agent::Spool spool(spoolOptions(dir, fsync), Poco::Logger::get("bench"));
            for (int i = 0; i < kRecords; ++i) spool.append(payload, 1000, true);
            spool.sync(); // what the interval flusher does; a no-op for Fsync::Never
        }
        state.PauseTiming();
        Poco::File(dir).remove(true);
        state.ResumeTiming();
    }
    state.SetBytesProcessed(state.iterations() * kRecords * static_cast<std::int64_t>(payload.size()));
}
BENCHMARK(BM_SpoolAppend)
    ->Arg(static_cast<int>(agent::Spool::Fsync::Interval))
    ->Arg(static_cast<int>(agent::Spool::Fsync::Never))
    ->ArgName("fsync(0=batch,1=interval,2=never)")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The same bytes with plain write(2) into one file and one fdatasync at the end: the yardstick.
void BM_PlainSequentialWrite(benchmark::State& state) {
    const std::string& payload = recordPayload();
    for (auto _ : state) {
        const std::string path = Poco::TemporaryFile::tempName();
        const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
        for (int i = 0; i < kRecords; ++i) {
            if (write(fd, payload.data(), payload.size()) != static_cast<ssize_t>(payload.size())) state.SkipWithError("write");
        }
        fdatasync(fd);
        close(fd);
        state.PauseTiming();
        unlink(path.c_str());
        state.ResumeTiming();
    }
    state.SetBytesProcessed(state.iterations() * kRecords * static_cast<std::int64_t>(payload.size()));
}
BENCHMARK(BM_PlainSequentialWrite)->Unit(benchmark::kMillisecond)->UseRealTime();

// A restart after an outage: open (scan + checksum every record), then read and decode them all.
void BM_SpoolReplay(benchmark::State& state) {
    const std::string& payload = recordPayload();
    const std::string dir = Poco::TemporaryFile::tempName();
    {
        agent::Spool spool(spoolOptions(dir, agent::Spool::Fsync::Never), Poco::Logger::get("bench"));
        for (int i = 0; i < kRecords; ++i) spool.append(payload, 1000, true);
    }
    std::size_t points = 0;
    for (auto _ : state) {
        agent::Spool spool(spoolOptions(dir, agent::Spool::Fsync::Never), Poco::Logger::get("bench"));
        agent::Spool::Position pos = spool.committed();
        agent::Spool::Record record;
        agent::Batch batch;
        while (spool.read(pos, record)) {
            agent::decodeBatch(record.payload, batch);
            points += batch.size();
            pos = record.next;
        }
    }
    Poco::File(dir).remove(true);
    state.SetBytesProcessed(state.iterations() * kRecords * static_cast<std::int64_t>(payload.size()));
    state.counters["points_per_second"] = benchmark::Counter(static_cast<double>(points), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SpoolReplay)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
