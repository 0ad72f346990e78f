// POST /post body parsing: the simdjson parser against the Poco::JSON one on a realistic body of
// 1,000 points (~80 KB: disk, network, process and service metrics with 2-3 tags each), with and without the
// copy into a padded buffer. Reports MB/s (bytes_per_second) and points/s (items_per_second).
#include "PostBody.h"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

namespace {

std::string realisticBody(std::size_t points) {
    std::string body = "[";
    for (std::size_t i = 0; i < points; ++i) {
        if (i > 0) body += ",";
        const std::string n = std::to_string(i);
        switch (i % 4) {
        case 0:
            body += R"({"name": "disk.used_percent", "timestamp": 1700000000, "tags": {"mount": "/srv/d)" + n +
                    R"(", "device": "nvme0n1p)" + std::to_string(i % 8) + R"("}, "value": )" +
                    std::to_string(37.25 + static_cast<double>(i % 50) / 3.0) + "}";
            break;
        case 1:
            body += R"({"name": "net.bytes_recv", "timestamp": 1700000000, "tags": {"interface": "eth)" + std::to_string(i % 4) +
                    R"(", "direction": "in"}, "value": )" + std::to_string(123456789012ull + i * 7919) + "}";
            break;
        case 2:
            body += R"({"name": "proc.running", "timestamp": 1700000000, "tags": {"process": "nginx-)" + n +
                    R"(", "pid": )" + std::to_string(1000 + i) + R"(}, "value": true})";
            break;
        default:
            body += R"({"name": "service.state", "timestamp": 1700000000.25, "tags": {"service": "pg15", "unit": "u)" +
                    n + R"(", "rack": "r)" + std::to_string(i % 16) + R"("}, "value": "active"})";
            break;
        }
    }
    body += "]";
    std::erase(body, ' '); // compact, as clients send it (no value here has a space)
    return body;
}

const std::string& body() {
    static const std::string text = realisticBody(1000);
    return text;
}

template <typename Parse>
void run(benchmark::State& state, Parse parse) {
    std::size_t points = 0;
    for (auto _ : state) {
        const agent::api::PostParseResult result = parse();
        if (!result.ok) {
            state.SkipWithError(result.error.c_str());
            return;
        }
        points = result.metrics.size();
        benchmark::DoNotOptimize(result.metrics.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body().size()));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * points));
    state.counters["body_KB"] = static_cast<double>(body().size()) / 1024.0;
}

void PostBodySimdjson(benchmark::State& state) {
    run(state, [] { return agent::api::parsePostBody(body(), "ops"); });
}

void PostBodySimdjsonNoCopy(benchmark::State& state) {
    std::string padded = body();
    padded.reserve(padded.size() + agent::api::kPostBodyPadding);
    run(state, [&padded] { return agent::api::parsePaddedPostBody(padded, padded.capacity(), "ops"); });
}

void PostBodyPoco(benchmark::State& state) {
    run(state, [] { return agent::api::parsePostBodyWithPoco(body(), "ops"); });
}

} // namespace

BENCHMARK(PostBodySimdjson)->Unit(benchmark::kMicrosecond);
BENCHMARK(PostBodySimdjsonNoCopy)->Unit(benchmark::kMicrosecond);
BENCHMARK(PostBodyPoco)->Unit(benchmark::kMicrosecond);
