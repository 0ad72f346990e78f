// libFuzzer target: a plugin's stdout, the outside input source-exec parses most often. It must
// end in metrics (every name valid, in the plugin's namespace) or a clear refusal, never a crash.
#include "PluginOutput.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const agent::exec::ParsedOutput parsed = agent::exec::parsePluginOutput(
        std::string_view(reinterpret_cast<const char*>(data), size), "ns", "project");
    for (const agent::Metric& metric : parsed.metrics) {
        if (metric.ns != "ns" || metric.name.rfind("PLUGIN.project.", 0) != 0 || metric.fields.size() != 1) std::abort();
    }
    if (!parsed.valid && !parsed.metrics.empty()) std::abort();
    return 0;
}
