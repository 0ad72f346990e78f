// libFuzzer target: a POST /post body, straight from any client. The simdjson parser and the
// Poco::JSON one must agree on it (same verdict, same metrics, same skipped entries), every metric
// must be a valid RUN.<name> in the namespace, and nothing may crash.
#include "PostBody.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void disagree(const char* what, const agent::api::PostParseResult& fast, const agent::api::PostParseResult& poco) {
    std::fprintf(stderr, "parsers disagree on %s\nsimdjson: ok=%d %zu metrics %s\npoco: ok=%d %zu metrics %s\n", what,
                 fast.ok, fast.metrics.size(), fast.error.c_str(), poco.ok, poco.metrics.size(), poco.error.c_str());
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const agent::api::PostParseResult fast = agent::api::parsePostBody(body, "ns");
    const agent::api::PostParseResult poco = agent::api::parsePostBodyWithPoco(body, "ns");
    if (fast.ok != poco.ok) disagree("the verdict", fast, poco);
    if (fast.metrics.size() != poco.metrics.size()) disagree("the number of metrics", fast, poco);
    if (fast.skipped != poco.skipped) disagree("the number of skipped entries", fast, poco);
    if (!fast.ok && fast.skipped != 0) std::abort();
    if (!fast.ok && (!fast.metrics.empty() || fast.error.empty())) std::abort();
    // Entry errors are the same text; only JSON syntax errors are worded by each library.
    if (!fast.ok && fast.error.rfind("body is not valid JSON", 0) != 0 && fast.error != poco.error) disagree("the error", fast, poco);
    for (std::size_t i = 0; i < fast.metrics.size(); ++i) {
        const agent::Metric& a = fast.metrics[i];
        const agent::Metric& b = poco.metrics[i];
        if (a.ns != "ns" || a.name.rfind("RUN.", 0) != 0 || !agent::isValidName(a.name) || a.fields.empty()) std::abort();
        if (a.name != b.name || a.timestamp != b.timestamp || a.tags.size() != b.tags.size() || a.fields.size() != b.fields.size())
            disagree("a metric", fast, poco);
        for (std::size_t t = 0; t < a.tags.size(); ++t) {
            if (a.tags[t].key != b.tags[t].key || a.tags[t].value != b.tags[t].value) disagree("a tag", fast, poco);
        }
        for (std::size_t f = 0; f < a.fields.size(); ++f) {
            if (a.fields[f].key != b.fields[f].key || a.fields[f].value != b.fields[f].value) disagree("a field", fast, poco);
        }
    }
    return 0;
}
