#include "MetricBus.h"

#include <Poco/Exception.h>
#include <Poco/Timestamp.h>

#include <ctime>

namespace agent {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t wallSeconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

} // namespace

SinkChannel::SinkChannel(std::string name, Sink& sink, Options options, Poco::Logger& logger)
    : name_(std::move(name)), sink_(sink), options_(options), logger_(logger), backoff_(options.backoff) {}

SinkChannel::~SinkChannel() { stop(); }

void SinkChannel::start() {
    if (!writer_.joinable()) writer_ = std::thread([this] { writerLoop(); });
}

std::size_t SinkChannel::offer(Batch batch) {
    const std::size_t points = batch.size();
    if (points == 0) return 0;
    std::size_t dropped = 0;
    std::uint64_t dropsToLog = 0;
    {
        std::lock_guard<std::mutex> lock(queueMutex_);
        if (stopping_) {
            dropped = points;
        } else {
            // A batch larger than the whole queue is still taken whole (batches are never split);
            // it then is the only one queued.
            while (!queue_.empty() && queuedPoints_ + points > options_.capacityPoints) {
                dropped += queue_.front().size();
                queuedPoints_ -= queue_.front().size();
                queue_.pop_front();
            }
            queue_.push_back(std::move(batch));
            queuedPoints_ += points;
            counters_.in += points;
        }
        if (dropped > 0) {
            counters_.dropped += dropped;
            dropsSinceLog_ += dropped;
            const Clock::time_point now = Clock::now();
            if (now - lastDropLog_ >= std::chrono::seconds(10)) { // one line per 10 s, not one per batch
                dropsToLog = dropsSinceLog_;
                lastDropLog_ = now;
                dropsSinceLog_ = 0;
            }
        }
    }
    if (dropsToLog > 0)
        logger_.warning("sink %s: queue full (%z points); dropped the %Lu oldest points", name_, options_.capacityPoints,
                        static_cast<Poco::UInt64>(dropsToLog));
    queueChanged_.notify_one();
    return dropped;
}

void SinkChannel::beginStop() {
    {
        std::lock_guard<std::mutex> lock(queueMutex_);
        if (stopping_) return;
        stopping_ = true;
        drainDeadline_ = Clock::now() + std::chrono::milliseconds(static_cast<long>(options_.drainSeconds * 1000));
    }
    queueChanged_.notify_all();
}

void SinkChannel::join() {
    if (writer_.joinable()) writer_.join();
}

void SinkChannel::stop() {
    beginStop();
    join();
}

std::size_t SinkChannel::queuedPoints() const {
    std::lock_guard<std::mutex> lock(queueMutex_);
    return queuedPoints_;
}

void SinkChannel::writerLoop() {
    for (;;) {
        Batch batch;
        {
            std::unique_lock<std::mutex> lock(queueMutex_);
            queueChanged_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return; // stopping, nothing left
            if (stopping_ && Clock::now() >= drainDeadline_) {
                std::size_t left = queuedPoints_;
                queue_.clear();
                queuedPoints_ = 0;
                counters_.dropped += left;
                logger_.error("sink %s: shutdown: %z queued points were not delivered in time", name_, left);
                return;
            }
            batch = std::move(queue_.front());
            queue_.pop_front();
            queuedPoints_ -= batch.size();
        }
        deliver(batch);
    }
}

void SinkChannel::deliver(const Batch& batch) {
    for (;;) {
        WriteOutcome outcome = WriteOutcome::Retry;
        std::string error;
        try {
            outcome = sink_.write(batch);
        } catch (const Poco::Exception& e) {
            error = e.displayText();
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (outcome == WriteOutcome::Done) {
            counters_.out += batch.size();
            backoff_.reset();
            return;
        }
        if (outcome == WriteOutcome::Drop) {
            counters_.dropped += batch.size();
            logger_.error("sink %s: rejected a batch of %z points; dropped", name_, batch.size());
            std::lock_guard<std::mutex> lock(queueMutex_);
            lastError_ = "rejected a batch of " + std::to_string(batch.size()) + " points";
            lastErrorTime_ = wallSeconds();
            return;
        }
        counters_.retried += batch.size();
        const Poco::Timespan wait = backoff_.next();
        if (error.empty()) error = "write failed; retrying";
        // Logged before taking the queue lock: a slow log must not stall publishing sources.
        logger_.warning("sink %s: write of %z points failed (%s); retry %u in %.1f s", name_, batch.size(), error,
                        backoff_.attempts(), static_cast<double>(wait.totalMilliseconds()) / 1000.0);
        std::unique_lock<std::mutex> lock(queueMutex_);
        lastError_ = error;
        lastErrorTime_ = wallSeconds();
        const Clock::time_point retryAt = Clock::now() + std::chrono::microseconds(wait.totalMicroseconds());
        for (;;) {
            if (stopping_ && Clock::now() >= drainDeadline_) {
                counters_.dropped += batch.size();
                logger_.error("sink %s: shutdown: a batch of %z points was not delivered in time", name_, batch.size());
                return;
            }
            const Clock::time_point until = stopping_ ? std::min(retryAt, drainDeadline_) : retryAt;
            if (queueChanged_.wait_until(lock, until) == std::cv_status::timeout && Clock::now() >= retryAt) break;
        }
    }
}

Poco::JSON::Object::Ptr SinkChannel::health() const {
    Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
    health->set("points_in", static_cast<Poco::UInt64>(counters_.in));
    health->set("points_out", static_cast<Poco::UInt64>(counters_.out));
    health->set("points_retried", static_cast<Poco::UInt64>(counters_.retried));
    health->set("points_dropped", static_cast<Poco::UInt64>(counters_.dropped));
    std::lock_guard<std::mutex> lock(queueMutex_);
    health->set("queued_points", static_cast<Poco::UInt64>(queuedPoints_));
    health->set("queue_capacity", static_cast<Poco::UInt64>(options_.capacityPoints));
    if (!lastError_.empty()) {
        health->set("last_error", lastError_);
        health->set("last_error_time", lastErrorTime_);
    }
    return health;
}

MetricBus::MetricBus(std::string hostname, Poco::Logger& logger) : hostname_(std::move(hostname)), logger_(logger) {}

MetricBus::~MetricBus() { stop(); }

void MetricBus::addSink(const std::string& name, Sink& sink, SinkChannel::Options options) {
    if (accepting_) throw Poco::IllegalStateException("sinks are added before the bus starts");
    sinks_.push_back(std::make_unique<SinkChannel>(name, sink, options, logger_));
}

void MetricBus::start() {
    for (const SinkChannelPtr& sink : sinks_) sink->start();
    accepting_ = true;
}

void MetricBus::stop() {
    accepting_ = false;
    for (const SinkChannelPtr& sink : sinks_) sink->beginStop();
    for (const SinkChannelPtr& sink : sinks_) sink->join();
}

PublishResult MetricBus::publish(Batch&& batch, OverflowPolicy policy) {
    (void)policy;
    PublishResult result;
    if (batch.empty()) return result;
    const std::int64_t now = wallSeconds();
    for (Metric& metric : batch) normalizeForSink(metric, hostname_, now);
    if (!accepting_ || sinks_.empty()) {
        result.dropped = batch.size();
        return result;
    }
    const std::size_t points = batch.size();
    std::size_t dropped = 0;
    for (std::size_t i = 0; i + 1 < sinks_.size(); ++i) dropped = std::max(dropped, sinks_[i]->offer(batch));
    dropped = std::max(dropped, sinks_.back()->offer(std::move(batch)));
    result.accepted = points;
    result.dropped = dropped;
    return result;
}

} // namespace agent
