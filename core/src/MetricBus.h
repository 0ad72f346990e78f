// The metric bus: sources publish batches, every sink gets its own bounded queue and its own
// writer thread, so a slow or dead sink never slows a source or another sink.
#pragma once

#include "Backoff.h"

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
    std::atomic<std::uint64_t> in{0};      // points accepted into the queue
    std::atomic<std::uint64_t> out{0};     // points delivered
    std::atomic<std::uint64_t> retried{0}; // points of writes that answered "retry"
    std::atomic<std::uint64_t> dropped{0}; // points lost: queue overflow, rejected, or undelivered at exit
};

// One sink's queue and writer thread. The queue holds at most `capacityPoints` points; when a new
// batch does not fit, the oldest batches are dropped (counted and logged): a monitoring agent
// prefers recent data, and a source must never wait on a sink.
class SinkChannel {
public:
    struct Options {
        std::size_t capacityPoints = 1000;
        Backoff::Policy backoff;
        double drainSeconds = 3; // at stop, time left to deliver what is queued
    };

    SinkChannel(std::string name, Sink& sink, Options options, Poco::Logger& logger);
    ~SinkChannel();
    SinkChannel(const SinkChannel&) = delete;
    SinkChannel& operator=(const SinkChannel&) = delete;

    const std::string& name() const { return name_; }
    void start();
    // Queues a batch; returns the number of points dropped to make room.
    std::size_t offer(Batch batch);
    // Delivers what it can within drainSeconds, counts the rest as dropped, joins the writer.
    // beginStop() only starts the drain, so that several sinks drain in parallel.
    void stop();
    void beginStop();
    void join();

    const SinkCounters& counters() const { return counters_; }
    std::size_t queuedPoints() const;
    Poco::JSON::Object::Ptr health() const;

private:
    void writerLoop();
    // Writes one batch until it is done or dropped, or the drain deadline passes.
    void deliver(const Batch& batch);

    const std::string name_;
    Sink& sink_;
    const Options options_;
    Poco::Logger& logger_;
    Backoff backoff_;
    SinkCounters counters_;

    mutable std::mutex queueMutex_; // guards the fields down to lastErrorTime_
    std::condition_variable queueChanged_;
    std::deque<Batch> queue_;
    std::size_t queuedPoints_ = 0;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point drainDeadline_{};
    std::string lastError_;
    std::int64_t lastErrorTime_ = 0;
    std::chrono::steady_clock::time_point lastDropLog_{};
    std::uint64_t dropsSinceLog_ = 0;

    std::thread writer_;
};

using SinkChannelPtr = std::unique_ptr<SinkChannel>;

class MetricBus : public Bus {
public:
    MetricBus(std::string hostname, Poco::Logger& logger);
    ~MetricBus() override;

    void addSink(const std::string& name, Sink& sink, SinkChannel::Options options);
    void start();
    // Stops accepting, drains every sink in parallel (each within its drain time), joins.
    void stop();

    // Applies the host-tag and timestamp rule, then hands the batch to every sink.
    PublishResult publish(Batch&& batch, OverflowPolicy policy = OverflowPolicy::DropOldest) override;

    const std::vector<SinkChannelPtr>& sinks() const { return sinks_; }

private:
    const std::string hostname_;
    Poco::Logger& logger_;
    std::vector<SinkChannelPtr> sinks_; // fixed after start()
    std::atomic<bool> accepting_{false};
};

} // namespace agent
