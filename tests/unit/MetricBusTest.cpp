// MetricBus and SinkChannel: fan-out, the host/timestamp rule, bounded queues that drop the
// oldest, retries with backoff owned by the core, drops, and a drain bounded in time at stop.
#include "MetricBus.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

using agent::Batch;
using agent::MetricBus;
using agent::SinkChannel;
using agent::WriteOutcome;
using agent::WriteResult;
using agent::test::eventually;

namespace {

// A sink whose answers the test scripts; it records every batch it accepted.
class ScriptedSink : public agent::Sink {
public:
    const agent::ConfigSchema& configSchema() const override {
        static const agent::ConfigSchema schema;
        return schema;
    }
    void configure(const agent::ModuleConfig&) override {}

    WriteResult write(const Batch& batch) override {
        std::unique_lock<std::mutex> lock(mutex_);
        ++calls_;
        if (blocked_) unblocked_.wait(lock, [this] { return !blocked_; });
        WriteOutcome outcome = WriteOutcome::Done;
        if (!script_.empty()) {
            outcome = script_.front();
            script_.erase(script_.begin());
        }
        if (throwNext_) {
            throwNext_ = false;
            throw std::runtime_error("connection refused");
        }
        if (outcome == WriteOutcome::Done) delivered_.insert(delivered_.end(), batch.begin(), batch.end());
        return outcome;
    }

    void answer(std::vector<WriteOutcome> script) {
        std::lock_guard<std::mutex> lock(mutex_);
        script_ = std::move(script);
    }
    void throwOnce() {
        std::lock_guard<std::mutex> lock(mutex_);
        throwNext_ = true;
    }
    void block(bool blocked) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            blocked_ = blocked;
        }
        unblocked_.notify_all();
    }
    Batch delivered() {
        std::lock_guard<std::mutex> lock(mutex_);
        return delivered_;
    }
    int calls() {
        std::lock_guard<std::mutex> lock(mutex_);
        return calls_;
    }

private:
    std::mutex mutex_;
    std::condition_variable unblocked_;
    std::vector<WriteOutcome> script_;
    Batch delivered_;
    bool blocked_ = false;
    bool throwNext_ = false;
    int calls_ = 0;
};

// Unblocks a sink when a test leaves early, so that the bus's stop() can join its writer.
struct Unblock {
    ScriptedSink& sink;
    ~Unblock() { sink.block(false); }
};

Batch points(int count, const std::string& name = "m") {
    Batch batch;
    for (int i = 0; i < count; ++i) batch.push_back(agent::makePoint("ns", name, static_cast<std::int64_t>(i), 1700000000 + i));
    return batch;
}

// Each test's spools live in a fresh directory.
class SpoolDir {
public:
    SinkChannel::Options options(const std::string& sink, std::size_t cachePoints = 1000) const {
        SinkChannel::Options options;
        options.cachePoints = cachePoints;
        options.backoff.initialSeconds = 0.01;
        options.backoff.maxSeconds = 0.05;
        options.drainSeconds = 1;
        options.spool.directory = dir_ / sink;
        options.spool.maxBytes = 16 << 20;
        options.spool.segmentBytes = 64 << 10;
        options.spool.fsync = agent::Spool::Fsync::Never;
        return options;
    }

private:
    agent::test::TempDir dir_;
};

Poco::Logger& testLogger() { return Poco::Logger::get("test.bus"); }

} // namespace

TEST(MetricBus, EverySinkGetsEveryPointWithTheHostTag) {
    ScriptedSink a;
    ScriptedSink b;
    SpoolDir spools;
    MetricBus bus("host-1", testLogger());
    bus.addSink("a", a, spools.options("a"));
    bus.addSink("b", b, spools.options("b"));
    bus.start();
    Batch batch = points(3);
    batch[1].setTag("host", "own-host");
    batch[2].timestamp = 0;
    const agent::PublishResult result = bus.publish(std::move(batch));
    EXPECT_EQ(result.accepted, 3u);
    EXPECT_EQ(result.dropped, 0u);
    ASSERT_TRUE(eventually([&] { return a.delivered().size() == 3 && b.delivered().size() == 3; }));
    for (ScriptedSink* sink : {&a, &b}) {
        const Batch got = sink->delivered();
        EXPECT_EQ(*got[0].findTag("host"), "host-1");
        EXPECT_EQ(*got[1].findTag("host"), "own-host");
        EXPECT_GE(got[2].timestamp, agent::kMinTimestamp);
        EXPECT_NE(got[2].timestamp, 0);
    }
    bus.stop();
    EXPECT_EQ(bus.sinks()[0]->counters().out, 3u);
    EXPECT_EQ(bus.sinks()[1]->counters().in, 3u);
}

// The Go agent's tag rule, on by default ([agent] tidy_tags); off, tag values pass unchanged.
TEST(MetricBus, TagValuesAreTidiedUnlessTurnedOff) {
    for (const bool tidy : {true, false}) {
        ScriptedSink sink;
        SpoolDir spools;
        agent::MetricBusOptions options;
        options.tidyTags = tidy;
        MetricBus bus("host-1", testLogger(), options);
        bus.addSink("a", sink, spools.options("a"));
        bus.start();
        Batch batch = points(1);
        batch[0].setTag("server", " web server 1 ");
        ASSERT_EQ(bus.publish(std::move(batch)).accepted, 1u);
        ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 1; }));
        EXPECT_EQ(*sink.delivered()[0].findTag("server"), tidy ? "web-server-1" : " web server 1 ");
        bus.stop();
    }
}

// An agent without sinks (API-only) takes nothing and says why, so /post can answer 503.
TEST(MetricBus, WithoutSinksNothingIsTakenAndTheResultSaysSo) {
    MetricBus bus("host-1", testLogger());
    bus.start();
    const agent::PublishResult result = bus.publish(points(2), agent::OverflowPolicy::RejectWhenFull);
    EXPECT_EQ(result.accepted, 0u);
    EXPECT_TRUE(result.noSink);
    bus.stop();
}

TEST(MetricBus, StalledSinkNeverBlocksTheSourceOrAnotherSink) {
    ScriptedSink stalled;
    ScriptedSink healthy;
    stalled.block(true);
    SpoolDir spools;
    MetricBus bus("h", testLogger());
    bus.addSink("stalled", stalled, spools.options("stalled", 100));
    bus.addSink("healthy", healthy, spools.options("healthy"));
    Unblock unblock{stalled};
    bus.start();
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i) bus.publish(points(10));
    // 50 publishes into a stalled 100-point queue return at once; they do not wait for the sink.
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    ASSERT_TRUE(eventually([&] { return healthy.delivered().size() == 500; }));
    stalled.block(false);
    bus.stop();
}

TEST(MetricBus, PointsBeyondTheMemoryCacheAreReadBackFromTheSpoolInOrder) {
    ScriptedSink sink;
    sink.block(true);
    SpoolDir spools;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options("s", 20));
    Unblock unblock{sink};
    bus.start();
    for (int i = 0; i < 10; ++i) {
        const agent::PublishResult result = bus.publish(points(10, "batch" + std::to_string(i)));
        EXPECT_EQ(result.accepted, 10u);
        EXPECT_EQ(result.dropped, 0u);
    }
    EXPECT_LE(bus.sinks()[0]->cachedPoints(), 20u);
    sink.block(false);
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 100; }));
    const Batch got = sink.delivered();
    for (int i = 0; i < 10; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i) * 10].name, "batch" + std::to_string(i));
    EXPECT_EQ(bus.sinks()[0]->counters().dropped, 0u);
    bus.stop();
}

TEST(MetricBus, FullSpoolDropsTheOldestPointsAndCountsThem) {
    ScriptedSink sink;
    sink.block(true);
    SpoolDir spools;
    SinkChannel::Options options = spools.options("s", 10);
    options.spool.maxBytes = 32 << 10;
    options.spool.segmentBytes = 4 << 10;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, options);
    Unblock unblock{sink};
    bus.start();
    bus.publish(points(10, "first"));
    ASSERT_TRUE(eventually([&] { return sink.calls() == 1; })); // "first" is in the writer's hands
    std::size_t published = 10;
    std::size_t reportedDropped = 0;
    for (int i = 0; i < 200; ++i) {
        const agent::PublishResult result = bus.publish(points(10, "later" + std::to_string(i)));
        EXPECT_EQ(result.accepted, 10u);
        reportedDropped += result.dropped;
        published += 10;
    }
    const std::uint64_t dropped = bus.sinks()[0]->counters().dropped;
    EXPECT_GT(dropped, 0u);
    EXPECT_EQ(dropped, reportedDropped);
    EXPECT_EQ(bus.sinks()[0]->spoolStats().droppedPoints, dropped);
    EXPECT_LE(bus.sinks()[0]->spoolStats().pendingBytes, options.spool.maxBytes);
    sink.block(false);
    // Everything not dropped arrives, the newest last; nothing is lost without being counted.
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() + dropped == published; }));
    EXPECT_EQ(sink.delivered().back().name, "later199");
    bus.stop();
}

TEST(MetricBus, RejectWhenFullTakesNothingAndSaysSo) {
    ScriptedSink sink;
    sink.block(true);
    SpoolDir spools;
    SinkChannel::Options options = spools.options("s", 10);
    options.spool.maxBytes = 16 << 10;
    options.spool.segmentBytes = 4 << 10;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, options);
    Unblock unblock{sink};
    bus.start();
    agent::PublishResult result;
    int accepted = 0;
    for (int i = 0; i < 1000 && !result.rejected; ++i) {
        result = bus.publish(points(10), agent::OverflowPolicy::RejectWhenFull);
        if (!result.rejected) ++accepted;
    }
    EXPECT_TRUE(result.rejected);
    EXPECT_EQ(result.accepted, 0u);
    EXPECT_EQ(bus.sinks()[0]->counters().dropped, 0u);
    EXPECT_EQ(bus.sinks()[0]->counters().in, static_cast<std::uint64_t>(accepted) * 10);
    sink.block(false);
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == static_cast<std::size_t>(accepted) * 10; }));
    bus.stop();
}

TEST(MetricBus, UndeliveredPointsStayInTheSpoolAndTheNextRunDeliversThem) {
    SpoolDir spools;
    {
        ScriptedSink dead;
        dead.answer(std::vector<WriteOutcome>(100000, WriteOutcome::Retry));
        MetricBus bus("h", testLogger());
        SinkChannel::Options options = spools.options("s");
        options.drainSeconds = 0.3;
        bus.addSink("s", dead, options);
        bus.start();
        bus.publish(points(4, "kept"));
        bus.publish(points(6, "kept2"));
        ASSERT_TRUE(eventually([&] { return dead.calls() >= 2; }));
        const auto started = std::chrono::steady_clock::now();
        bus.stop();
        EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
        EXPECT_EQ(bus.sinks()[0]->counters().dropped, 0u);
    }
    ScriptedSink healthy;
    MetricBus bus("h", testLogger());
    bus.addSink("s", healthy, spools.options("s"));
    bus.start();
    ASSERT_TRUE(eventually([&] { return healthy.delivered().size() == 10; }));
    EXPECT_EQ(healthy.delivered()[0].name, "kept");
    EXPECT_EQ(healthy.delivered()[4].name, "kept2");
    bus.stop();
}

TEST(MetricBus, QueuedBatchesAreMergedUpToTheSinksBatchSize) {
    ScriptedSink sink;
    sink.block(true);
    SpoolDir spools;
    SinkChannel::Options options = spools.options("s");
    options.batching.maxPoints = 25;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, options);
    Unblock unblock{sink};
    bus.start();
    bus.publish(points(10, "first"));
    ASSERT_TRUE(eventually([&] { return sink.calls() == 1; }));
    for (int i = 0; i < 6; ++i) bus.publish(points(10));
    sink.block(false);
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 70; }));
    // 10 alone (already taken), then 20 + 20 + 20 (a third batch of 10 would pass 25).
    EXPECT_EQ(sink.calls(), 4);
    bus.stop();
}

TEST(MetricBus, RetryIsRepeatedWithBackoffUntilDoneAndOrderIsKept) {
    ScriptedSink sink;
    sink.answer({WriteOutcome::Retry, WriteOutcome::Retry, WriteOutcome::Done});
    SpoolDir spools;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options("s"));
    bus.start();
    bus.publish(points(2, "a"));
    bus.publish(points(2, "b"));
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 4; }));
    const Batch got = sink.delivered();
    EXPECT_EQ(got[0].name, "a");
    EXPECT_EQ(got[2].name, "b");
    EXPECT_EQ(sink.calls(), 4);
    EXPECT_EQ(bus.sinks()[0]->counters().retried, 4u);
    EXPECT_EQ(bus.sinks()[0]->counters().out, 4u);
    bus.stop();
}

TEST(MetricBus, ThrowingSinkIsRetriedAndItsErrorShowsInHealth) {
    ScriptedSink sink;
    sink.throwOnce();
    SpoolDir spools;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options("s"));
    bus.start();
    bus.publish(points(1));
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 1; }));
    EXPECT_EQ(bus.sinks()[0]->health()->getValue<std::string>("last_error"), "connection refused");
    bus.stop();
}

TEST(MetricBus, RejectedBatchIsDroppedAndCountedNotRetried) {
    ScriptedSink sink;
    sink.answer({WriteOutcome::Drop});
    SpoolDir spools;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options("s"));
    bus.start();
    bus.publish(points(3, "bad"));
    bus.publish(points(2, "good"));
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 2; }));
    EXPECT_EQ(sink.calls(), 2);
    EXPECT_EQ(bus.sinks()[0]->counters().dropped, 3u);
    bus.stop();
}

TEST(MetricBus, StopDeliversWhatIsQueuedWhenTheSinkWorks) {
    ScriptedSink sink;
    sink.block(true);
    SpoolDir spools;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options("s"));
    Unblock unblock{sink};
    bus.start();
    for (int i = 0; i < 5; ++i) bus.publish(points(10));
    sink.block(false);
    bus.stop();
    EXPECT_EQ(sink.delivered().size(), 50u);
    EXPECT_EQ(bus.sinks()[0]->counters().dropped, 0u);
}

TEST(MetricBus, PublishWithoutSinksDropsAndSaysSo) {
    SpoolDir spools;
    MetricBus bus("h", testLogger());
    bus.start();
    const agent::PublishResult result = bus.publish(points(3));
    EXPECT_EQ(result.accepted, 0u);
    EXPECT_EQ(result.dropped, 3u);
}
