// The module interface: what every .so exports through its Poco manifest.
//
// Life cycle, driven by the core: construct -> configSchema() -> configure(section) ->
// start(context) -> stop(). configure() validates everything and throws ConfigError listing every
// bad key; stop() must return within a few seconds, flushing what it can.
#pragma once

#include <agent/Metric.h>
#include <agent/ModuleConfig.h>

#include <Poco/Timespan.h>

#include <memory>

namespace agent {

class Context;

class Module {
public:
    virtual ~Module() = default;

    // The keys of the module's own config section ([<module-name>]).
    virtual const ConfigSchema& configSchema() const = 0;
    // Reads and checks the section; the ModuleConfig does not outlive the call, so keep values.
    virtual void configure(const ModuleConfig& config) = 0;
    virtual void start(Context& context) { (void)context; }
    virtual void stop() {}
};

using ModulePtr = std::unique_ptr<Module>;

// Produces metrics. The core calls collect() every collectInterval() and publishes the batch;
// a source that schedules its own work (through Context::scheduler) returns a zero interval.
class Source : public Module {
public:
    virtual Poco::Timespan collectInterval() const = 0;
    virtual void collect(Batch& out) = 0;
    // True when the first collect() only records a baseline (rates need two reads); `agent once`
    // then collects twice, one second apart.
    virtual bool needsBaseline() const { return false; }
};

// What a sink's write reports. The core, not the sink, owns retries and backoff.
enum class WriteOutcome {
    Done,  // delivered
    Retry, // not delivered, try again later (peer down, 5xx, timeout)
    Drop,  // the peer rejected the data as malformed; retrying would not help
};

const char* toString(WriteOutcome outcome);

// How a sink likes its batches. The core merges queued batches (in order) up to maxPoints before
// calling write(), and waits up to maxDelay for more points when it has fewer than that.
struct SinkBatching {
    std::size_t maxPoints = 0;       // 0 = write each published batch as it is
    Poco::Timespan maxDelay = 0;     // 0 = write as soon as anything is queued
};

// Delivers metrics. write() is called from the sink's own writer thread, one batch at a time; the
// batch may mix namespaces. Answer Done only when the peer has the data.
class Sink : public Module {
public:
    virtual WriteOutcome write(const Batch& batch) = 0;
    // Read once, after configure().
    virtual SinkBatching batching() const { return {}; }
};

} // namespace agent
