#include "MetricBus.h"

#include "BatchCodec.h"

#include <Poco/Exception.h>

#include <algorithm>
#include <ctime>
#include <iterator>

namespace agent {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t wallSeconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

Clock::duration toDuration(double seconds) { return std::chrono::microseconds(static_cast<std::int64_t>(seconds * 1e6)); }

constexpr unsigned kMaxWriters = 64; // SinkBatching::concurrency is clamped to 1..64

} // namespace

SinkChannel::SinkChannel(std::string name, Sink& sink, Options options, Poco::Logger& logger)
    : name_(std::move(name)), sink_(sink), options_(std::move(options)), logger_(logger),
      spool_(options_.spool, logger), backoff_(options_.backoff) {
    readPos_ = spool_.committed();
    heldUntil_ = readPos_;
    endPos_ = spool_.end();
    unreadPoints_ = spool_.stats().replayedPoints;
}

SinkChannel::~SinkChannel() { stop(); }

void SinkChannel::start() {
    if (!writers_.empty()) return;
    const unsigned writers = std::clamp(options_.batching.concurrency, 1u, kMaxWriters);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        writersRunning_ = writers;
    }
    for (unsigned i = 0; i < writers; ++i) writers_.emplace_back([this] { writerLoop(); });
}

void SinkChannel::noteError(const std::string& error) {
    std::lock_guard<std::mutex> lock(mutex_);
    lastError_ = error;
    lastErrorTime_ = wallSeconds();
}

std::size_t SinkChannel::offer(std::string_view payload, std::uint32_t crc, std::shared_ptr<Batch> batch,
                              OverflowPolicy policy, bool& appended) {
    const std::size_t points = batch->size();
    appended = false;
    if (points == 0) return 0;
    std::uint64_t dropsToLog = 0;
    std::string failure;
    Spool::AppendResult result;
    {
        std::lock_guard<std::mutex> lock(mutex_); // appends and the cache stay in the same order
        // Every range a writer holds ends before heldUntil_: dropping it loses nothing.
        result = spool_.append(payload, static_cast<std::uint32_t>(points), crc, policy == OverflowPolicy::DropOldest,
                               std::max(heldUntil_, readPos_));
        if (!result.appended) {
            if (result.error.empty()) return 0; // full, and the publisher asked not to drop
            counters_.dropped += points;
            failure = result.error;
            lastError_ = result.error;
            lastErrorTime_ = wallSeconds();
        } else {
            appended = true;
            counters_.in += points;
            const Spool::Position after = endPos_;
            endPos_ = result.next;
            unreadPoints_ += points;
            if (result.droppedPoints > 0) {
                counters_.dropped += result.droppedPoints;
                dropsSinceLog_ += result.droppedPoints;
                unreadPoints_ -= std::min<std::uint64_t>(unreadPoints_, result.droppedPoints);
                while (!cache_.empty() && cache_.front().at < result.droppedBefore) {
                    cachedPoints_ -= cache_.front().batch->size();
                    cache_.pop_front();
                }
                const Clock::time_point now = Clock::now();
                if (now - lastDropLog_ >= std::chrono::seconds(10)) { // one line per 10 s, not per batch
                    dropsToLog = dropsSinceLog_;
                    dropsSinceLog_ = 0;
                    lastDropLog_ = now;
                }
            }
            cachedPoints_ += points;
            cache_.push_back(Cached{result.at, result.next, after, std::move(batch)});
            // The cache is only a shortcut: what leaves it is still on disk.
            while (cachedPoints_ > options_.cachePoints && cache_.size() > 1) {
                cachedPoints_ -= cache_.front().batch->size();
                cache_.pop_front();
            }
        }
    }
    if (!failure.empty()) logger_.error("sink %s: a batch of %z points is lost: %s", name_, points, failure);
    if (dropsToLog > 0)
        logger_.warning("sink %s: spool full (%Lu bytes); dropped the %Lu oldest points", name_,
                        static_cast<Poco::UInt64>(options_.spool.maxBytes), static_cast<Poco::UInt64>(dropsToLog));
    changed_.notify_all();
    return result.droppedPoints;
}

void SinkChannel::beginStop(double maxDrainSeconds) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
        const double drain = maxDrainSeconds < 0 ? options_.drainSeconds : std::min(options_.drainSeconds, maxDrainSeconds);
        drainDeadline_ = Clock::now() + toDuration(drain);
    }
    changed_.notify_all();
}

void SinkChannel::join() {
    for (std::thread& writer : writers_) {
        if (writer.joinable()) writer.join();
    }
}

void SinkChannel::stop() {
    beginStop();
    join();
}

std::size_t SinkChannel::cachedPoints() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cachedPoints_;
}

bool SinkChannel::hasUnread() const { return readPos_ < endPos_; }

namespace {

// Adds `more` to `batch`: taken as it is when `batch` is empty; otherwise `batch` is made this
// writer's own (copied when another sink still shares it) and `more`'s points are moved when no
// one else holds them, copied when someone does.
void merge(std::shared_ptr<Batch>& batch, std::shared_ptr<Batch>&& more) {
    if (!batch) {
        batch = std::move(more);
        return;
    }
    if (batch.use_count() > 1) batch = std::make_shared<Batch>(*batch);
    if (more.use_count() == 1) std::move(more->begin(), more->end(), std::back_inserter(*batch));
    else batch->insert(batch->end(), more->begin(), more->end());
}

} // namespace

bool SinkChannel::gather(std::shared_ptr<Batch>& batch, Spool::Position& next, std::unique_lock<std::mutex>& lock) {
    const std::size_t maxPoints = options_.batching.maxPoints;
    Spool::Position pos = readPos_;
    std::uint64_t taken = 0; // points read past, decodable or not
    std::size_t have = 0;    // points in `batch`
    for (;;) {
        while (!cache_.empty() && cache_.front().at < pos) {
            cachedPoints_ -= cache_.front().batch->size();
            cache_.pop_front();
        }
        // A record that begins a segment is also found at the end of the previous one.
        if (!cache_.empty() && (cache_.front().at == pos || cache_.front().after == pos)) {
            Cached& front = cache_.front();
            const std::size_t size = front.batch->size(); // counted before the batch moves out
            if (have > 0 && have + size > maxPoints) break;
            taken += size;
            have += size;
            merge(batch, std::move(front.batch));
            cachedPoints_ -= size;
            pos = front.next;
            cache_.pop_front();
        } else {
            // Not in memory (evicted, or left by a previous run): read it from the spool.
            const Spool::Position end = endPos_;
            Spool::Record record;
            lock.unlock();
            const bool found = spool_.read(pos, record);
            lock.lock();
            if (!found) {
                if (have == 0) readPos_ = std::max(readPos_, end); // nothing up to `end`
                break;
            }
            auto decoded = std::make_shared<Batch>();
            if (!decodeBatch(record.payload, *decoded)) {
                counters_.dropped += record.points;
                logger_.error("sink %s: an undecodable spool record of %u points was skipped", name_,
                              static_cast<unsigned>(record.points));
                taken += record.points;
                pos = record.next;
                if (have == 0) readPos_ = pos;
                continue;
            }
            const std::size_t size = decoded->size();
            if (have > 0 && have + size > maxPoints) break;
            taken += record.points;
            have += size;
            merge(batch, std::move(decoded));
            pos = record.next;
        }
        if (maxPoints == 0 || have >= maxPoints) break;
    }
    unreadPoints_ -= std::min(unreadPoints_, taken);
    next = pos;
    if (have > 0) {
        readPos_ = std::max(readPos_, next);
        heldUntil_ = std::max(heldUntil_, next);
    }
    if (!hasUnread()) unreadPoints_ = 0; // what a damaged segment hid is not waited for
    return have > 0;
}

bool SinkChannel::finish(std::uint64_t id, Spool::Position& commitTo) {
    for (InFlight& range : inFlight_) {
        if (range.id == id) range.finished = true;
    }
    bool grew = false;
    while (!inFlight_.empty() && inFlight_.front().finished) {
        commitTo = inFlight_.front().next;
        inFlight_.pop_front();
        grew = true;
    }
    return grew;
}

void SinkChannel::writerLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::size_t maxPoints = options_.batching.maxPoints;
    const Clock::duration maxDelay = std::chrono::microseconds(options_.batching.maxDelay.totalMicroseconds());
    const auto finished = [this] { return stopping_ && (!hasUnread() || Clock::now() >= drainDeadline_); };
    for (;;) {
        // One writer at a time claims the next range, so that ranges are consecutive.
        while (!finished() && (gathering_ || !hasUnread())) {
            if (stopping_) changed_.wait_until(lock, drainDeadline_);
            else changed_.wait(lock);
        }
        if (finished()) break;
        gathering_ = true;
        if (maxPoints > 0 && maxDelay.count() > 0 && !stopping_ && unreadPoints_ < maxPoints) {
            // Let a batch fill up to the sink's size, but never wait longer than its delay; a
            // backlog (in memory or only on disk) holding a full batch is written at once.
            changed_.wait_until(lock, Clock::now() + maxDelay, [&] { return stopping_ || unreadPoints_ >= maxPoints; });
        }
        std::shared_ptr<Batch> batch;
        Spool::Position next;
        const bool got = gather(batch, next, lock);
        gathering_ = false;
        if (!got) {
            changed_.notify_all(); // another writer may wait for its turn to claim
            continue;
        }
        const std::uint64_t id = nextRangeId_++;
        inFlight_.push_back(InFlight{id, next, false});
        lock.unlock();
        changed_.notify_all(); // the next writer may claim the next range
        const bool delivered = deliver(*batch);
        batch.reset(); // freed (when this sink was the last to hold it) outside the lock
        lock.lock();
        if (!delivered) break; // stopping: it stays in the spool for the next start
        Spool::Position commitTo;
        if (finish(id, commitTo)) {
            lock.unlock();
            spool_.commit(commitTo); // monotonic: a late, older commit is ignored
            lock.lock();
        }
    }
    if (--writersRunning_ > 0) return; // the last writer out persists the cursor
    const bool left = hasUnread() || !inFlight_.empty();
    lock.unlock();
    spool_.persistCursor();
    if (left) {
        const Spool::Stats stats = spool_.stats();
        logger_.warning("sink %s: %Lu bytes not delivered yet stay in the spool for the next start", name_,
                        static_cast<Poco::UInt64>(stats.pendingBytes));
    }
}

bool SinkChannel::deliver(const Batch& batch) {
    for (;;) {
        bool probe = false;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            // While the peer fails, every writer waits for the pause to end; then one write at a
            // time probes the peer until one gets through.
            while (failing_) {
                const Clock::time_point now = Clock::now();
                if (stopping_ && now >= drainDeadline_) return false;
                if (!probing_ && now >= pauseUntil_) {
                    probing_ = true;
                    probe = true;
                    break;
                }
                if (probing_ && !stopping_) changed_.wait(lock);
                else changed_.wait_until(lock, probing_ ? drainDeadline_
                                                         : (stopping_ ? std::min(pauseUntil_, drainDeadline_) : pauseUntil_));
            }
        }
        WriteResult result;
        std::string error;
        try {
            result = sink_.write(batch);
        } catch (const Poco::Exception& e) {
            result = WriteOutcome::Retry;
            error = e.displayText();
        } catch (const std::exception& e) {
            result = WriteOutcome::Retry;
            error = e.what();
        }
        const std::size_t size = batch.size();
        if (result.outcome == WriteOutcome::Done || result.outcome == WriteOutcome::Drop) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (probe) probing_ = false;
                failing_ = false; // the peer answers
                if (result.outcome == WriteOutcome::Done) backoff_.reset();
            }
            changed_.notify_all();
            if (result.outcome == WriteOutcome::Drop) {
                counters_.dropped += size;
                logger_.error("sink %s: the peer rejected a batch of %z points; dropped", name_, size);
                noteError("rejected a batch of " + std::to_string(size) + " points");
                return true;
            }
            // A plain Done delivered every point; otherwise `rejected` of them were refused for good.
            const std::size_t rejected = std::min(result.rejected, size);
            counters_.out += size - rejected;
            if (rejected > 0) {
                counters_.dropped += rejected;
                logger_.warning("sink %s: the peer rejected %z of %z points; delivered the rest", name_, rejected, size);
                noteError("rejected " + std::to_string(rejected) + " of " + std::to_string(size) + " points");
            }
            return true;
        }
        counters_.retried += size;
        if (error.empty()) error = "write failed; retrying";
        Poco::Timespan wait;
        unsigned attempt = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (probe) probing_ = false;
            const Clock::time_point now = Clock::now();
            if (probe || !failing_) {
                // This failure sets the pause; writes already in flight that fail too only join it.
                wait = backoff_.next();
                attempt = backoff_.attempts();
                pauseUntil_ = now + std::chrono::microseconds(wait.totalMicroseconds());
                failing_ = true;
            } else {
                wait = Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::max(pauseUntil_ - now, Clock::duration::zero()))
                                          .count());
            }
            lastError_ = error;
            lastErrorTime_ = wallSeconds();
        }
        changed_.notify_all();
        const double seconds = static_cast<double>(wait.totalMilliseconds()) / 1000.0;
        if (attempt > 0)
            logger_.warning("sink %s: write of %z points failed (%s); retry %u in %.1f s", name_, size, error, attempt, seconds);
        else
            logger_.warning("sink %s: write of %z points failed (%s); retried after the pause, in %.1f s", name_, size,
                            error, seconds);
    }
}

Poco::JSON::Object::Ptr SinkChannel::health() const {
    Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
    health->set("points_in", static_cast<Poco::UInt64>(counters_.in));
    health->set("points_out", static_cast<Poco::UInt64>(counters_.out));
    health->set("points_retried", static_cast<Poco::UInt64>(counters_.retried));
    health->set("points_dropped", static_cast<Poco::UInt64>(counters_.dropped));
    const Spool::Stats spool = spool_.stats();
    health->set("spool_bytes", static_cast<Poco::UInt64>(spool.bytes));
    health->set("spool_pending_bytes", static_cast<Poco::UInt64>(spool.pendingBytes));
    health->set("spool_segments", static_cast<Poco::UInt64>(spool.segments));
    health->set("spool_dropped_points", static_cast<Poco::UInt64>(spool.droppedPoints));
    health->set("spool_max_bytes", static_cast<Poco::UInt64>(options_.spool.maxBytes));
    std::lock_guard<std::mutex> lock(mutex_);
    health->set("cached_points", static_cast<Poco::UInt64>(cachedPoints_));
    if (!lastError_.empty()) {
        health->set("last_error", lastError_);
        health->set("last_error_time", lastErrorTime_);
    }
    return health;
}

MetricBus::MetricBus(std::string hostname, Poco::Logger& logger, Options options)
    : hostname_(std::move(hostname)), logger_(logger), options_(options) {}

MetricBus::~MetricBus() { stop(); }

void MetricBus::addSink(const std::string& name, Sink& sink, SinkChannel::Options options) {
    if (accepting_) throw Poco::IllegalStateException("sinks are added before the bus starts");
    sinks_.push_back(std::make_unique<SinkChannel>(name, sink, std::move(options), logger_));
}

void MetricBus::start() {
    for (const SinkChannelPtr& sink : sinks_) sink->start();
    flusher_ = std::thread([this] { flusherLoop(); });
    accepting_ = true;
}

void MetricBus::flusherLoop() {
    std::unique_lock<std::mutex> lock(flusherMutex_);
    while (!flusherStop_) {
        flusherWake_.wait_for(lock, toDuration(options_.fsyncIntervalSeconds), [this] { return flusherStop_; });
        for (const SinkChannelPtr& sink : sinks_) sink->sync(); // a no-op for sinks with nothing new
    }
}

void MetricBus::stop(double maxDrainSeconds) {
    accepting_ = false;
    for (const SinkChannelPtr& sink : sinks_) sink->beginStop(maxDrainSeconds);
    for (const SinkChannelPtr& sink : sinks_) sink->join();
    {
        std::lock_guard<std::mutex> lock(flusherMutex_);
        flusherStop_ = true;
    }
    flusherWake_.notify_all();
    if (flusher_.joinable()) flusher_.join();
}

PublishResult MetricBus::publish(Batch&& batch, OverflowPolicy policy) {
    PublishResult result;
    if (batch.empty()) {
        result.noSink = sinks_.empty(); // an empty batch is refused like any other when nothing stores it
        return result;
    }
    const std::int64_t now = wallSeconds();
    for (Metric& metric : batch) {
        normalizeForSink(metric, hostname_, now);
        if (options_.tidyTags) tidyTagValues(metric);
    }
    if (!accepting_ || sinks_.empty()) {
        result.dropped = batch.size();
        result.rejected = policy == OverflowPolicy::RejectWhenFull;
        result.noSink = sinks_.empty();
        return result;
    }
    // Encoded once for every sink, into this thread's buffer (the spools copy it); the record's
    // checksum too, outside any lock.
    thread_local std::string payload;
    payload.clear();
    encodeBatch(batch, payload);
    const std::uint32_t crc = Spool::checksum(static_cast<std::uint32_t>(batch.size()), payload);
    struct Trim { // a rare huge batch does not keep its buffer for the thread's life
        ~Trim() {
            if (payload.capacity() > (4u << 20)) std::string().swap(payload);
        }
    } trim;
    if (policy == OverflowPolicy::RejectWhenFull) {
        for (const SinkChannelPtr& sink : sinks_) {
            if (!sink->hasRoomFor(payload.size())) {
                result.rejected = true;
                return result;
            }
        }
    }
    const std::size_t points = batch.size();
    // One batch for every sink: no copy per sink.
    auto shared = std::make_shared<Batch>(std::move(batch));
    bool everywhere = true;
    for (std::size_t i = 0; i < sinks_.size(); ++i) {
        bool appended = false;
        const bool last = i + 1 == sinks_.size();
        result.dropped =
            std::max(result.dropped, sinks_[i]->offer(payload, crc, last ? std::move(shared) : shared, policy, appended));
        everywhere = everywhere && appended;
    }
    result.accepted = everywhere ? points : 0;
    result.rejected = !everywhere;
    return result;
}

} // namespace agent
