// SinkChannel delivery: a backlog is written back to back (no batching delay while a full batch
// is unread, in memory or only on disk), several writes in flight at once with a commit that
// never passes an undelivered range, retries shared by the writers, and exact counters for
// partial writes.
#include "BatchCodec.h"
#include "MetricBus.h"
#include "Spool.h"

#include "TestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

using agent::Batch;
using agent::MetricBus;
using agent::SinkChannel;
using agent::WriteOutcome;
using agent::WriteResult;
using agent::test::eventually;

namespace {

// A sink whose answers depend on the batch's first point's name ("b<i>", one published batch per
// write). Writes of a name in `held` block until released; the sink records what it delivered
// and how many writes ran at once.
class GatedSink : public agent::Sink {
public:
    const agent::ConfigSchema& configSchema() const override {
        static const agent::ConfigSchema schema;
        return schema;
    }
    void configure(const agent::ModuleConfig&) override {}

    WriteResult write(const Batch& batch) override {
        const std::string name = batch.front().name;
        std::unique_lock<std::mutex> lock(mutex_);
        started_.push_back(name);
        ++running_;
        maxRunning_ = std::max(maxRunning_, running_);
        changed_.notify_all();
        changed_.wait(lock, [&] { return held_.count(name) == 0; });
        --running_;
        WriteResult result = WriteOutcome::Done;
        auto it = answers_.find(name);
        if (it != answers_.end() && !it->second.empty()) {
            result = it->second.front();
            if (it->second.size() > 1) it->second.erase(it->second.begin()); // the last answer stays
        }
        if (result.outcome == WriteOutcome::Done) {
            const std::size_t delivered = batch.size() - std::min(result.rejected, batch.size());
            delivered_.insert(delivered_.end(), batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(delivered));
        }
        return result;
    }

    void hold(const std::string& name) {
        std::lock_guard<std::mutex> lock(mutex_);
        held_.insert(name);
    }
    void release(const std::string& name) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            held_.erase(name);
        }
        changed_.notify_all();
    }
    void releaseAll() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            held_.clear();
        }
        changed_.notify_all();
    }
    // Answers for writes of `name`, in turn; the last one repeats.
    void answer(const std::string& name, std::vector<WriteResult> results) {
        std::lock_guard<std::mutex> lock(mutex_);
        answers_[name] = std::move(results);
    }
    int running() {
        std::lock_guard<std::mutex> lock(mutex_);
        return running_;
    }
    int maxRunning() {
        std::lock_guard<std::mutex> lock(mutex_);
        return maxRunning_;
    }
    std::vector<std::string> started() {
        std::lock_guard<std::mutex> lock(mutex_);
        return started_;
    }
    Batch delivered() {
        std::lock_guard<std::mutex> lock(mutex_);
        return delivered_;
    }
    // The names of delivered batches (first point of each run of equal names), in order.
    std::vector<std::string> deliveredNames() {
        std::vector<std::string> names;
        for (const agent::Metric& m : delivered()) {
            if (names.empty() || names.back() != m.name) names.push_back(m.name);
        }
        return names;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::set<std::string> held_;
    std::map<std::string, std::vector<WriteResult>> answers_;
    std::vector<std::string> started_;
    Batch delivered_;
    int running_ = 0;
    int maxRunning_ = 0;
};

struct ReleaseAll {
    GatedSink& sink;
    ~ReleaseAll() { sink.releaseAll(); }
};

Batch points(int count, const std::string& name) {
    Batch batch;
    for (int i = 0; i < count; ++i) batch.push_back(agent::makePoint("ns", name, static_cast<std::int64_t>(i), 1700000000 + i));
    return batch;
}

std::string nameOf(int i) { return "b" + std::to_string(i); }

std::vector<std::string> names(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back(nameOf(i));
    return out;
}

class Spools {
public:
    SinkChannel::Options options(unsigned concurrency, std::size_t maxPoints = 0) const {
        SinkChannel::Options options;
        options.backoff.initialSeconds = 0.05;
        options.backoff.maxSeconds = 0.1;
        options.drainSeconds = 0.5;
        options.batching.maxPoints = maxPoints;
        options.batching.concurrency = concurrency;
        options.spool.directory = dir_ / "s";
        options.spool.maxBytes = 16 << 20;
        options.spool.segmentBytes = 2 << 10; // several segments: commits delete whole ones
        options.spool.fsync = agent::Spool::Fsync::Never;
        return options;
    }

private:
    agent::test::TempDir dir_;
};

Poco::Logger& testLogger() { return Poco::Logger::get("test.delivery"); }

} // namespace

TEST(MetricBusDelivery, BacklogOnDiskIsWrittenWithoutTheBatchDelay) {
    Spools spools;
    SinkChannel::Options options = spools.options(1, 10);
    options.batching.maxDelay = Poco::Timespan(1, 0); // 1 s per batch would take 200 s
    {
        agent::Spool spool(options.spool, testLogger()); // left by a previous run
        for (int i = 0; i < 200; ++i) {
            std::string payload;
            agent::encodeBatch(points(10, nameOf(i)), payload);
            ASSERT_TRUE(spool.append(payload, 10, true).appended);
        }
    }
    GatedSink sink;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, options);
    const auto started = std::chrono::steady_clock::now();
    bus.start();
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 2000; }, std::chrono::seconds(10)));
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    EXPECT_EQ(sink.deliveredNames(), names(0, 200));
    bus.stop();
    EXPECT_EQ(bus.sinks()[0]->counters().out, 2000u);
}

TEST(MetricBusDelivery, BacklogInMemoryIsWrittenWithoutTheBatchDelay) {
    Spools spools;
    SinkChannel::Options options = spools.options(1, 10);
    options.batching.maxDelay = Poco::Timespan(1, 0);
    GatedSink sink;
    sink.hold(nameOf(0));
    ReleaseAll release{sink};
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, options);
    bus.start();
    for (int i = 0; i < 50; ++i) bus.publish(points(10, nameOf(i)));
    ASSERT_TRUE(eventually([&] { return sink.running() == 1; }, std::chrono::seconds(5)));
    const auto released = std::chrono::steady_clock::now();
    sink.release(nameOf(0));
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 500; }, std::chrono::seconds(10)));
    EXPECT_LT(std::chrono::steady_clock::now() - released, std::chrono::seconds(3));
    EXPECT_EQ(sink.deliveredNames(), names(0, 50));
    bus.stop();
}

TEST(MetricBusDelivery, FewerPointsThanABatchStillWaitForTheDelay) {
    Spools spools;
    SinkChannel::Options options = spools.options(1, 100);
    options.batching.maxDelay = Poco::Timespan(0, 300000);
    GatedSink sink;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, options);
    bus.start();
    for (int i = 0; i < 3; ++i) bus.publish(points(5, nameOf(i)));
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 15; }));
    EXPECT_EQ(sink.started().size(), 1u); // merged into one write after the delay
    bus.stop();
}

TEST(MetricBusDelivery, ConcurrentWritesCompleteOutOfOrderAndTheCommitWaitsForTheOldest) {
    Spools spools;
    GatedSink sink;
    for (const std::string& name : names(0, 8)) sink.hold(name);
    ReleaseAll release{sink};
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options(4));
    bus.start();
    for (int i = 0; i < 8; ++i) ASSERT_EQ(bus.publish(points(20, nameOf(i))).accepted, 20u);
    SinkChannel& channel = *bus.sinks()[0];
    const std::uint64_t pendingAtFirst = channel.spoolStats().pendingBytes;
    ASSERT_TRUE(eventually([&] { return sink.running() == 4; }));
    std::vector<std::string> first = sink.started();
    std::sort(first.begin(), first.end());
    EXPECT_EQ(first, names(0, 4)); // the four oldest ranges
    // The later three finish first: nothing may be committed while b0 is undelivered.
    for (int i = 1; i < 8; ++i) sink.release(nameOf(i));
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 7 * 20; }));
    EXPECT_EQ(channel.spoolStats().pendingBytes, pendingAtFirst);
    EXPECT_EQ(sink.maxRunning(), 4);
    sink.release(nameOf(0));
    ASSERT_TRUE(eventually([&] { return channel.spoolStats().pendingBytes == 0; }));
    bus.stop();
    EXPECT_EQ(channel.counters().out, 160u);
    EXPECT_EQ(channel.counters().dropped, 0u);
}

TEST(MetricBusDelivery, RetryOfOneRangeWhileOthersSucceed) {
    Spools spools;
    GatedSink sink;
    sink.answer(nameOf(2), {WriteOutcome::Retry, WriteOutcome::Retry, WriteOutcome::Done});
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options(4));
    bus.start();
    for (int i = 0; i < 12; ++i) bus.publish(points(10, nameOf(i)));
    ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 120; }));
    SinkChannel& channel = *bus.sinks()[0];
    ASSERT_TRUE(eventually([&] { return channel.spoolStats().pendingBytes == 0; }));
    bus.stop();
    std::vector<std::string> got = sink.deliveredNames();
    std::sort(got.begin(), got.end());
    std::vector<std::string> want = names(0, 12);
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
    EXPECT_EQ(channel.counters().retried, 20u);
    EXPECT_EQ(channel.counters().out, 120u);
}

TEST(MetricBusDelivery, StopWithAnUndeliveredRangeKeepsItAndEverythingAfterIt) {
    Spools spools;
    {
        GatedSink sink;
        sink.answer(nameOf(4), {WriteOutcome::Retry}); // for good
        MetricBus bus("h", testLogger());
        bus.addSink("s", sink, spools.options(4));
        bus.start();
        for (int i = 0; i < 8; ++i) bus.publish(points(10, nameOf(i)));
        // b0..b3 and b5..b7 get through; b4 is retried until the drain deadline.
        ASSERT_TRUE(eventually([&] { return sink.delivered().size() == 70; }));
        const auto stopping = std::chrono::steady_clock::now();
        bus.stop();
        EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(3));
        EXPECT_EQ(bus.sinks()[0]->counters().out, 70u);
        EXPECT_EQ(bus.sinks()[0]->counters().dropped, 0u);
    }
    // The next run starts at b4: what was acknowledged by the sink before it is not sent again,
    // b4 is not lost, and the later ranges may come again.
    GatedSink healthy;
    MetricBus bus("h", testLogger());
    bus.addSink("s", healthy, spools.options(4));
    bus.start();
    ASSERT_TRUE(eventually([&] { return healthy.delivered().size() == 40; }));
    bus.stop();
    std::vector<std::string> got = healthy.deliveredNames();
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, names(4, 8));
    EXPECT_EQ(bus.sinks()[0]->spoolStats().pendingBytes, 0u);
}

TEST(MetricBusDelivery, StopWhileWritesAreInFlightPersistsACursorThatLosesNothing) {
    Spools spools;
    std::set<std::string> deliveredFirst;
    {
        GatedSink sink;
        for (const std::string& name : names(0, 4)) sink.hold(name);
        sink.answer(nameOf(1), {WriteOutcome::Retry}); // answered when released, after the deadline
        MetricBus bus("h", testLogger());
        SinkChannel::Options options = spools.options(4);
        options.drainSeconds = 0.3;
        bus.addSink("s", sink, options);
        bus.start();
        for (int i = 0; i < 10; ++i) bus.publish(points(10, nameOf(i)));
        ASSERT_TRUE(eventually([&] { return sink.running() == 4; }));
        std::thread releaser([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            sink.release(nameOf(0));
            sink.release(nameOf(2));
            std::this_thread::sleep_for(std::chrono::milliseconds(400)); // past the drain deadline
            sink.releaseAll();
        });
        bus.stop();
        releaser.join();
        for (const std::string& name : sink.deliveredNames()) deliveredFirst.insert(name);
        EXPECT_EQ(deliveredFirst.count(nameOf(0)), 1u);
        EXPECT_EQ(deliveredFirst.count(nameOf(1)), 0u);
    }
    GatedSink healthy;
    MetricBus bus("h", testLogger());
    bus.addSink("s", healthy, spools.options(1));
    bus.start();
    ASSERT_TRUE(eventually([&] { return bus.sinks()[0]->spoolStats().pendingBytes == 0; }));
    bus.stop();
    // Every batch arrived in one run or the other; the second run starts exactly at b1.
    const std::vector<std::string> second = healthy.deliveredNames();
    ASSERT_FALSE(second.empty());
    EXPECT_EQ(second.front(), nameOf(1));
    std::set<std::string> all = deliveredFirst;
    all.insert(second.begin(), second.end());
    EXPECT_EQ(all.size(), 10u);
}

TEST(MetricBusDelivery, PartialWritesAndDropsAreCountedExactly) {
    Spools spools;
    GatedSink sink;
    sink.answer(nameOf(0), {WriteResult(WriteOutcome::Done, 7, 3)});
    sink.answer(nameOf(1), {WriteOutcome::Drop});
    sink.answer(nameOf(2), {WriteOutcome::Done});
    sink.answer(nameOf(3), {WriteResult(WriteOutcome::Done, 10, 0)});
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, spools.options(1));
    bus.start();
    for (int i = 0; i < 4; ++i) bus.publish(points(10, nameOf(i)));
    SinkChannel& channel = *bus.sinks()[0];
    ASSERT_TRUE(eventually([&] { return channel.counters().out + channel.counters().dropped == 40; }));
    bus.stop();
    EXPECT_EQ(channel.counters().in, 40u);
    EXPECT_EQ(channel.counters().out, 27u);
    EXPECT_EQ(channel.counters().dropped, 13u);
    EXPECT_EQ(channel.counters().retried, 0u);
    EXPECT_EQ(channel.health()->getValue<std::string>("last_error"), "rejected a batch of 10 points");
}

TEST(MetricBusDelivery, TheMemoryCacheIsEmptyOnceEverythingIsDelivered) {
    Spools spools;
    SinkChannel::Options options = spools.options(1);
    options.cachePoints = 100;
    GatedSink sink;
    MetricBus bus("h", testLogger());
    bus.addSink("s", sink, options);
    bus.start();
    // Far more than the cache holds, delivered as it comes: the writer takes every batch from
    // memory, and what it took no longer counts as cached.
    for (int i = 0; i < 50; ++i) {
        bus.publish(points(10, nameOf(i)));
        ASSERT_TRUE(eventually([&] { return sink.delivered().size() == static_cast<std::size_t>(i + 1) * 10; }));
    }
    EXPECT_EQ(bus.sinks()[0]->cachedPoints(), 0u);
    bus.stop();
}

TEST(MetricBusDelivery, SinksShareABatchAndMergingIntoOneNeverChangesItForTheOther) {
    agent::test::TempDir dir;
    GatedSink a;
    GatedSink b;
    // Every write of "a" blocks until the last batch is published, so that what its two writers
    // did not take is unread at once and merged, however fast the writers pick batches up.
    for (int i = 0; i < 12; ++i) a.hold(nameOf(i));
    b.hold(nameOf(0));
    ReleaseAll releaseA{a};
    ReleaseAll releaseB{b};
    MetricBus bus("h", testLogger());
    for (auto [name, sink, maxPoints] : {std::tuple<const char*, GatedSink*, std::size_t>{"a", &a, 30}, {"b", &b, 0}}) {
        SinkChannel::Options options;
        options.batching.maxPoints = maxPoints;
        options.batching.concurrency = 2;
        options.spool.directory = dir / name;
        options.spool.fsync = agent::Spool::Fsync::Never;
        bus.addSink(name, *sink, options);
    }
    bus.start();
    for (int i = 0; i < 12; ++i) bus.publish(points(10, nameOf(i)));
    a.releaseAll();
    b.release(nameOf(0));
    ASSERT_TRUE(eventually([&] { return a.delivered().size() == 120 && b.delivered().size() == 120; }));
    bus.stop();
    for (GatedSink* sink : {&a, &b}) {
        std::map<std::string, std::vector<std::int64_t>> values;
        for (const agent::Metric& m : sink->delivered()) values[m.name].push_back(std::get<std::int64_t>(m.fields[0].value));
        ASSERT_EQ(values.size(), 12u);
        for (const auto& [name, got] : values) EXPECT_EQ(got, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})) << name;
    }
    // "a" wrote two batches before the rest was published, then the other 100 points or less in
    // batches of 30; "b" wrote each published batch alone.
    EXPECT_LE(a.started().size(), 6u);
    EXPECT_EQ(b.started().size(), 12u);
}
