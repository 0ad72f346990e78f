// The module interface: what every .so exports through its Poco manifest.
//
// Life cycle, driven by the core: construct -> configSchema() -> describe() -> configure(section) ->
// start(context) -> stop(). configure() validates everything and throws ConfigError listing every
// bad key; stop() must return within a few seconds, flushing what it can.
//
// A module says what it is through describe() (its roles, the routes it registers, the threads of
// its executor). The core orders start and stop and owns routes by that answer, never by the
// module's name (docs/ARCHITECTURE.md §4.5).
#pragma once

#include <agent/Metric.h>
#include <agent/ModuleConfig.h>

#include <Poco/Timespan.h>

#include <memory>
#include <string>
#include <vector>

namespace agent {

class Context;

// What a module is. A module may have several roles (source-exec is a Source that registers routes).
enum class Role : unsigned {
    Source = 1u << 0,   // publishes metrics on the bus; must derive from Source
    Sink = 1u << 1,     // delivers metrics; must derive from Sink (the core gives it a spool and a writer)
    Server = 1u << 2,   // takes requests from outside and answers them from the route table (api-http);
                        // started after and stopped before every module whose routes it serves
    Reporter = 1u << 3, // reads other modules' health (Context::moduleHealth) and reports it elsewhere
};

using Roles = unsigned; // a set of Role bits

constexpr Roles operator|(Role a, Role b) { return static_cast<Roles>(a) | static_cast<Roles>(b); }
constexpr Roles operator|(Roles a, Role b) { return a | static_cast<Roles>(b); }
constexpr bool hasRole(Roles roles, Role role) { return (roles & static_cast<Roles>(role)) != 0; }

// describe()'s answer, read once after construction.
struct ModuleDescription {
    Roles roles = 0;
    // The paths this module registers through Context::routes(). Only these: registering another
    // path throws. A request for a declared path before the module registered it (or after it
    // stopped) gets 503 naming the module.
    std::vector<std::string> routes;
    // Threads of the module's own executor (Context::scheduler()), 1 to 16. Work of this module
    // never waits for another module's threads; give more than one when the module's tasks may
    // block (a statvfs() on a dead NFS mount) and others of its tasks must go on meanwhile.
    unsigned workers = 1;
    // Those of `routes` whose answer may wait long: a plugin run, a clone, a registry poll. The
    // agent answers at most kSlowRequestsAtOnce (Routes.h) such requests at once, the core's and
    // every module's together; one more gets 503 with Retry-After, so that slow requests never
    // take every thread of the HTTP server from /post and the other routes.
    std::vector<std::string> slowRoutes{};
};

class Module {
public:
    virtual ~Module() = default;

    // The keys of the module's own config section ([<module-name>]).
    virtual const ConfigSchema& configSchema() const = 0;
    // What the module is; Source and Sink give their role, a module adds the rest.
    virtual ModuleDescription describe() const { return {}; }
    // Reads and checks the section; the ModuleConfig does not outlive the call, so keep values.
    virtual void configure(const ModuleConfig& config) = 0;
    virtual void start(Context& context) { (void)context; }
    virtual void stop() {}
};

using ModulePtr = std::unique_ptr<Module>;

// Produces metrics. The core calls collect() every collectInterval() on the module's own executor
// and publishes the batch; a source that schedules its own work (through Context::scheduler)
// returns a zero interval.
class Source : public Module {
public:
    ModuleDescription describe() const override { return {static_cast<Roles>(Role::Source), {}, 1}; }
    virtual Poco::Timespan collectInterval() const = 0;
    virtual void collect(Batch& out) = 0;
    // True when the first collect() only records a baseline (rates need two reads); `agent once`
    // then collects twice, one second apart.
    virtual bool needsBaseline() const { return false; }
};

// What a sink's write reports. The core, not the sink, owns retries and backoff.
enum class WriteOutcome {
    Done,  // delivered (all of it, or all but `rejected` points the peer refused for good)
    Retry, // not delivered, try again later (peer down, 5xx, timeout): the whole batch is retried
    Drop,  // the peer rejected the data as malformed; retrying would not help
};

const char* toString(WriteOutcome outcome);

// A write's outcome with its counts, as Telegraf's PartialWriteError: the core's counters
// (`/metrics`, `/me/status`) add `delivered` to points out and `rejected` to points dropped.
// - Done: delivered + rejected == the batch's size; rejected > 0 is a partial write (a chunk with a
//   field type conflict). Returning plain WriteOutcome::Done means every point was delivered.
// - Drop: every point was rejected (rejected is taken as the batch's size).
// - Retry: nothing is counted; the whole batch is written again later (at least once: a peer may
//   see points again that an earlier, partly failed try delivered).
struct WriteResult {
    WriteOutcome outcome = WriteOutcome::Retry;
    std::size_t delivered = 0;
    std::size_t rejected = 0;

    WriteResult() = default;
    WriteResult(WriteOutcome o) : outcome(o) {} // NOLINT: a plain outcome converts implicitly
    WriteResult(WriteOutcome o, std::size_t deliveredPoints, std::size_t rejectedPoints)
        : outcome(o), delivered(deliveredPoints), rejected(rejectedPoints) {}
};

// How a sink likes its batches. The core merges queued batches (in order) up to maxPoints before
// calling write(), and waits up to maxDelay for more points when fewer than that are unread
// (never while a backlog, in memory or only on disk, holds a full batch).
struct SinkBatching {
    std::size_t maxPoints = 0;       // 0 = write each published batch as it is
    Poco::Timespan maxDelay = 0;     // 0 = write as soon as anything is queued
    // Writes in flight at once. Above 1, the core calls write() from that many threads at once
    // with consecutive batches, and moves the spool's cursor past a batch only once it and every
    // earlier batch are delivered: a crash at any moment loses nothing acknowledged.
    unsigned concurrency = 1;
};

// Delivers metrics. write() is called from the sink's own writer thread(s): one batch at a time, or
// up to SinkBatching::concurrency batches at once from as many threads; the batch may mix
// namespaces. Answer Done only when the peer has the data.
class Sink : public Module {
public:
    ModuleDescription describe() const override { return {static_cast<Roles>(Role::Sink), {}, 1}; }
    virtual WriteResult write(const Batch& batch) = 0;
    // Read once, after configure().
    virtual SinkBatching batching() const { return {}; }
};

} // namespace agent
