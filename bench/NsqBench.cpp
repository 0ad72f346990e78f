// sink-nsq throughput: points/s from the sink's writer (the NsqBatchWriter the module uses: JSON
// body encoding, MPUB, waiting for OK) to the NSQ peer of the test suite on loopback, which
// parses every frame as nsqd would. Batches of 5000 points, JSON and line bodies.
#include "NsqBatchWriter.h"
#include "NsqPeer.h"

#include <Poco/Logger.h>

#include <benchmark/benchmark.h>

namespace {

agent::Batch makeBatch() {
    agent::Batch batch;
    for (int i = 0; i < 5000; ++i) {
        agent::Metric m = agent::makePoint("local", "net.in.packets", 1234.5 + i, 1700000000);
        m.setTag("host", "bench-host");
        m.setTag("interface", "eth" + std::to_string(i % 4));
        batch.push_back(std::move(m));
    }
    return batch;
}

void BM_NsqWrite(benchmark::State& state) {
    agent::test::NsqPeer peer;
    agent::nsq::NsqSinkSettings settings;
    std::string error;
    settings.servers.push_back(*agent::nsq::parseServerAddress(peer.address(), error));
    settings.format = state.range(0) == 0 ? agent::nsq::BodyFormat::Json : agent::nsq::BodyFormat::Line;
    agent::nsq::NsqBatchWriter writer(settings, "bench-host", Poco::Logger::get("bench"));
    const agent::Batch batch = makeBatch();
    for (auto _ : state) {
        const agent::WriteResult result = writer.write(batch);
        if (result.outcome != agent::WriteOutcome::Done || result.delivered != batch.size())
            state.SkipWithError("write did not deliver the whole batch");
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch.size()));
    writer.close();
}
BENCHMARK(BM_NsqWrite)->Arg(0)->Arg(1)->ArgName("format(0=json,1=line)")->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
