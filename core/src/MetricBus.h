// The metric bus: sources publish batches; every sink gets its own durable spool, a bounded
// in-memory cache of what it has not delivered yet, and its own writer thread(s), so a slow or
// dead sink never slows a source or another sink, and nothing acknowledged is lost.
#pragma once

#include "Spool.h"

#include <agent/Backoff.h>
#include <agent/Context.h>
#include <agent/Module.h>

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace agent {

struct SinkCounters {
    std::atomic<std::uint64_t> in{0};      // points acknowledged into the spool
    std::atomic<std::uint64_t> out{0};     // points delivered
    std::atomic<std::uint64_t> retried{0}; // points of writes that answered "retry"
    std::atomic<std::uint64_t> dropped{0}; // points lost: spool full, rejected by the peer, unappendable
};

// One sink's spool, cache and writer threads. publish() appends to the spool (the source's
// batch is acknowledged then); a writer claims the next range of records in order, from the
// cache when it keeps up and from disk when it does not, and writes it. With
// SinkBatching::concurrency = N, N writers each hold a consecutive range; the spool is committed
// past a range only when it and every earlier range are delivered (or dropped).
class SinkChannel {
public:
    struct Options {
        std::size_t cachePoints = 1000; // [output] buffersize: points kept in memory
        Backoff::Policy backoff;
        double drainSeconds = 3;        // at stop, time left to deliver; the rest stays spooled
        SinkBatching batching;
        Spool::Options spool;
    };

    // Opens the spool, which recovers what a previous run left undelivered.
    SinkChannel(std::string name, Sink& sink, Options options, Poco::Logger& logger);
    ~SinkChannel();
    SinkChannel(const SinkChannel&) = delete;
    SinkChannel& operator=(const SinkChannel&) = delete;

    const std::string& name() const { return name_; }
    void start();

    bool hasRoomFor(std::size_t payloadBytes) const { return spool_.hasRoomFor(payloadBytes); }
    // Appends an encoded batch (`payload`, the same bytes for every sink, with its record checksum
    // `crc` = Spool::checksum) and caches `batch`. Returns the points of older data dropped to make
    // room; `appended` says whether it was taken.
    // `batch` is shared by every sink's cache and writer, and never changed while shared.
    std::size_t offer(std::string_view payload, std::uint32_t crc, std::shared_ptr<Batch> batch, OverflowPolicy policy,
                      bool& appended);

    // `maxDrainSeconds` caps the drain below options().drainSeconds (the stop's budget); < 0 = no cap.
    void beginStop(double maxDrainSeconds = -1);
    void join();
    void stop();
    void sync() { spool_.sync(); }

    const SinkCounters& counters() const { return counters_; }
    Spool::Stats spoolStats() const { return spool_.stats(); }
    std::size_t cachedPoints() const;
    Poco::JSON::Object::Ptr health() const;

private:
    struct Cached {
        Spool::Position at;
        Spool::Position next;
        Spool::Position after; // the end of the record appended before it (at, unless a segment began)
        std::shared_ptr<Batch> batch; // the publisher's batch, shared with the other sinks
    };

    // A range of records claimed by a writer, in spool order.
    struct InFlight {
        std::uint64_t id = 0;
        Spool::Position next; // after its last record
        bool finished = false; // delivered or dropped
    };

    void writerLoop();
    // Gathers records from `readPos_` on, up to the sink's batch size; false when none.
    // The batch is a cached one as it is (shared) when it is a single record, else a merged copy.
    bool gather(std::shared_ptr<Batch>& batch, Spool::Position& next, std::unique_lock<std::mutex>& lock);
    bool hasUnread() const; // needs mutex_
    // Writes until done, dropped, or the drain deadline passes; true when it may be committed.
    bool deliver(const Batch& batch);
    // Marks range `id` finished; returns true with `commitTo` when the committed prefix grew.
    bool finish(std::uint64_t id, Spool::Position& commitTo); // needs mutex_
    void noteError(const std::string& error);

    const std::string name_;
    Sink& sink_;
    const Options options_;
    Poco::Logger& logger_;
    Spool spool_;
    Backoff backoff_;
    SinkCounters counters_;

    mutable std::mutex mutex_; // guards the fields down to dropsSinceLog_
    std::condition_variable changed_;
    std::deque<Cached> cache_;
    std::size_t cachedPoints_ = 0;
    Spool::Position readPos_;  // the next record no writer has claimed yet
    Spool::Position heldUntil_; // after the last range a writer claimed (= readPos_)
    Spool::Position endPos_;   // after the last appended record
    std::uint64_t unreadPoints_ = 0; // points from readPos_ on, in memory or only on disk
    std::deque<InFlight> inFlight_; // claimed and not yet committed, the oldest first
    std::uint64_t nextRangeId_ = 0;
    bool gathering_ = false; // a writer is claiming the next range (one at a time: ranges stay consecutive)
    // Retries are shared: after a write answered Retry every writer pauses until pauseUntil_,
    // then one write at a time probes the peer until one is delivered.
    bool failing_ = false;
    bool probing_ = false;
    std::chrono::steady_clock::time_point pauseUntil_{};
    unsigned writersRunning_ = 0;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point drainDeadline_{};
    std::string lastError_;
    std::int64_t lastErrorTime_ = 0;
    std::chrono::steady_clock::time_point lastDropLog_{};
    std::uint64_t dropsSinceLog_ = 0;

    std::vector<std::thread> writers_;
};

using SinkChannelPtr = std::unique_ptr<SinkChannel>;

struct MetricBusOptions {
    double fsyncIntervalSeconds = 1; // for Spool::Fsync::Interval
    bool tidyTags = true;            // [agent] tidy_tags: agent::tidyTagValues on every point
};

class MetricBus : public Bus {
public:
    using Options = MetricBusOptions;

    MetricBus(std::string hostname, Poco::Logger& logger, Options options = {});
    ~MetricBus() override;

    void addSink(const std::string& name, Sink& sink, SinkChannel::Options options);
    void start();
    // Stops accepting, drains every sink in parallel (each within its drain time, and within
    // `maxDrainSeconds` when that is >= 0: what is left of the agent's stop budget), joins.
    void stop(double maxDrainSeconds = -1);

    // Applies the host-tag and timestamp rule, then appends the batch to every sink's spool.
    PublishResult publish(Batch&& batch, OverflowPolicy policy = OverflowPolicy::DropOldest) override;

    const std::vector<SinkChannelPtr>& sinks() const { return sinks_; }

private:
    void flusherLoop();

    const std::string hostname_;
    Poco::Logger& logger_;
    const Options options_;
    std::vector<SinkChannelPtr> sinks_; // fixed after start()
    std::atomic<bool> accepting_{false};

    std::mutex flusherMutex_; // guards flusherStop_
    std::condition_variable flusherWake_;
    bool flusherStop_ = false;
    std::thread flusher_;
};

} // namespace agent
