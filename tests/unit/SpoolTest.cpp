// Spool: records come back in order across segments, delivered segments go, a restart resumes at
// the cursor, a torn tail is cut and the rest kept, a full spool drops its oldest segment.
#include "BatchCodec.h"
#include "Spool.h"

#include "TestSupport.h"

#include <Poco/File.h>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <fstream>
#include <unistd.h>

using agent::Spool;
using agent::test::TempDir;

namespace {

Spool::Options options(const TempDir& dir, std::uint64_t maxBytes = 1 << 20, std::uint64_t segmentBytes = 1024) {
    Spool::Options o;
    o.directory = dir / "spool";
    o.maxBytes = maxBytes;
    o.segmentBytes = segmentBytes;
    o.fsync = Spool::Fsync::Never;
    return o;
}

Poco::Logger& logger() { return Poco::Logger::get("test.spool"); }

// Reads every record from the committed cursor on; returns their payloads.
std::vector<std::string> readAll(Spool& spool, Spool::Position* end = nullptr) {
    std::vector<std::string> payloads;
    Spool::Position pos = spool.committed();
    Spool::Record record;
    while (spool.read(pos, record)) {
        payloads.push_back(record.payload);
        pos = record.next;
    }
    if (end != nullptr) *end = pos;
    return payloads;
}

std::string payload(int i) { return "record-" + std::to_string(i) + std::string(100, 'x'); }

std::vector<std::string> segmentFiles(const TempDir& dir) {
    std::vector<std::string> names;
    Poco::File(dir / "spool").list(names);
    std::vector<std::string> segments;
    for (const std::string& name : names)
        if (name.size() > 4 && name.substr(name.size() - 4) == ".seg") segments.push_back(name);
    std::sort(segments.begin(), segments.end());
    return segments;
}

} // namespace

TEST(Spool, RecordsAreReadBackInOrderAcrossSegments) {
    TempDir dir;
    Spool spool(options(dir), logger());
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(spool.append(payload(i), 1, true).appended);
    EXPECT_GT(spool.stats().segments, 2u);
    const std::vector<std::string> got = readAll(spool);
    ASSERT_EQ(got.size(), 30u);
    for (int i = 0; i < 30; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], payload(i));
}

TEST(Spool, CommitDeletesDeliveredSegmentsAndKeepsTheRest) {
    TempDir dir;
    Spool spool(options(dir), logger());
    Spool::Position afterTwenty;
    for (int i = 0; i < 30; ++i) {
        const Spool::AppendResult r = spool.append(payload(i), 1, true);
        if (i == 19) afterTwenty = r.next;
    }
    const std::size_t before = segmentFiles(dir).size();
    spool.commit(afterTwenty);
    EXPECT_LT(segmentFiles(dir).size(), before);
    const std::vector<std::string> rest = readAll(spool);
    ASSERT_EQ(rest.size(), 10u);
    EXPECT_EQ(rest.front(), payload(20));
}

TEST(Spool, ReopenedSpoolResumesAtTheCursor) {
    TempDir dir;
    {
        Spool spool(options(dir), logger());
        Spool::Position afterFive;
        for (int i = 0; i < 12; ++i) {
            const Spool::AppendResult r = spool.append(payload(i), 3, true);
            if (i == 4) afterFive = r.next;
        }
        spool.commit(afterFive);
    } // the destructor writes the cursor
    Spool reopened(options(dir), logger());
    EXPECT_EQ(reopened.stats().replayedRecords, 7u);
    const std::vector<std::string> rest = readAll(reopened);
    ASSERT_EQ(rest.size(), 7u);
    EXPECT_EQ(rest.front(), payload(5));
    ASSERT_TRUE(reopened.append(payload(99), 1, true).appended);
    EXPECT_EQ(readAll(reopened).back(), payload(99));
}

TEST(Spool, TornTailIsCutAtStartAndEveryWholeRecordIsKept) {
    TempDir dir;
    {
        Spool spool(options(dir, 1 << 20, 1 << 20), logger());
        for (int i = 0; i < 5; ++i) spool.append(payload(i), 1, true);
    }
    // A crash in the middle of a write: half a header and some payload bytes at the end.
    const std::string segment = dir / ("spool/" + segmentFiles(dir).back());
    {
        std::ofstream out(segment, std::ios::app | std::ios::binary);
        out << std::string("POOL\x40\x00\x00", 7) << "partial";
    }
    Spool spool(options(dir, 1 << 20, 1 << 20), logger());
    EXPECT_EQ(spool.stats().truncatedBytes, 14u);
    const std::vector<std::string> got = readAll(spool);
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got.back(), payload(4));
    ASSERT_TRUE(spool.append(payload(5), 1, true).appended); // appends continue on a boundary
    EXPECT_EQ(readAll(spool).back(), payload(5));
}

TEST(Spool, CorruptRecordCutsItsSegmentThereAtStart) {
    TempDir dir;
    Spool::Position third;
    {
        Spool spool(options(dir, 1 << 20, 1 << 20), logger());
        for (int i = 0; i < 5; ++i) {
            const Spool::AppendResult r = spool.append(payload(i), 1, true);
            if (i == 2) third = r.at;
        }
    }
    const std::string segment = dir / ("spool/" + segmentFiles(dir).back());
    const int fd = open(segment.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "!", 1, static_cast<off_t>(third.offset + Spool::kHeaderBytes + 3)), 1); // flips a payload byte
    close(fd);
    Spool spool(options(dir, 1 << 20, 1 << 20), logger());
    EXPECT_EQ(readAll(spool), (std::vector<std::string>{payload(0), payload(1)}));
    EXPECT_GT(spool.stats().truncatedBytes, 0u);
}

TEST(Spool, CursorOffARecordBoundaryRestartsItsSegmentRatherThanLoseData) {
    TempDir dir;
    {
        Spool spool(options(dir, 1 << 20, 1 << 20), logger());
        for (int i = 0; i < 3; ++i) spool.append(payload(i), 1, true);
    }
    std::ofstream(dir / "spool/cursor") << "1 7\n";
    Spool spool(options(dir, 1 << 20, 1 << 20), logger());
    EXPECT_EQ(readAll(spool).size(), 3u);
}

TEST(Spool, FullSpoolDropsItsOldestSegmentAndCountsItsPoints) {
    TempDir dir;
    Spool spool(options(dir, 4096, 1024), logger());
    std::uint64_t dropped = 0;
    for (int i = 0; i < 100; ++i) {
        const Spool::AppendResult r = spool.append(payload(i), 2, true);
        ASSERT_TRUE(r.appended);
        dropped += r.droppedPoints;
    }
    const std::vector<std::string> left = readAll(spool);
    EXPECT_EQ(dropped, spool.stats().droppedPoints);
    EXPECT_EQ(dropped + left.size() * 2, 200u); // every point is either spooled or counted
    EXPECT_EQ(left.back(), payload(99));
    EXPECT_LE(spool.stats().pendingBytes, 4096u);
}

TEST(Spool, FullSpoolTakesNothingWhenAskedNotToDrop) {
    TempDir dir;
    Spool spool(options(dir, 4096, 1024), logger());
    int appended = 0;
    for (int i = 0; i < 100; ++i) appended += spool.append(payload(i), 1, false).appended ? 1 : 0;
    EXPECT_LT(appended, 100);
    EXPECT_FALSE(spool.hasRoomFor(payload(0).size()));
    EXPECT_EQ(spool.stats().droppedPoints, 0u);
    EXPECT_EQ(readAll(spool).size(), static_cast<std::size_t>(appended));
}

TEST(BatchCodec, EveryFieldTypeRoundTrips) {
    agent::Metric m = agent::makePoint("ns.a", "cpu idle", 1.5, 1700000000);
    m.setTag("host", "h,1 =x");
    m.setTag("ünïcode", "値");
    m.addField("i", std::int64_t{-9});
    m.addField("u", std::uint64_t{18446744073709551615ull});
    m.addField("t", true);
    m.addField("f", false);
    m.addField("s", std::string("quote\" back\\slash\nnewline"));
    m.timestamp = -42;
    const agent::Batch batch{m, agent::makePoint("", "", std::int64_t{0}, 0)};
    std::string encoded;
    agent::encodeBatch(batch, encoded);
    agent::Batch decoded;
    ASSERT_TRUE(agent::decodeBatch(encoded, decoded));
    ASSERT_EQ(decoded.size(), 2u);
    EXPECT_EQ(decoded[0].ns, "ns.a");
    EXPECT_EQ(decoded[0].name, "cpu idle");
    EXPECT_EQ(decoded[0].timestamp, -42);
    ASSERT_EQ(decoded[0].tags.size(), 2u);
    EXPECT_EQ(decoded[0].tags[1].value, "値");
    ASSERT_EQ(decoded[0].fields.size(), 6u);
    EXPECT_EQ(std::get<double>(decoded[0].fields[0].value), 1.5);
    EXPECT_EQ(std::get<std::int64_t>(decoded[0].fields[1].value), -9);
    EXPECT_EQ(std::get<std::uint64_t>(decoded[0].fields[2].value), 18446744073709551615ull);
    EXPECT_EQ(std::get<bool>(decoded[0].fields[3].value), true);
    EXPECT_EQ(std::get<bool>(decoded[0].fields[4].value), false);
    EXPECT_EQ(std::get<std::string>(decoded[0].fields[5].value), "quote\" back\\slash\nnewline");
}

TEST(BatchCodec, NoTruncationOrExtensionOfAPayloadDecodes) {
    agent::Batch batch{agent::makePoint("ns", "m", std::string("text"), 1700000000)};
    batch[0].setTag("k", "v");
    std::string encoded;
    agent::encodeBatch(batch, encoded);
    agent::Batch out;
    for (std::size_t size = 0; size < encoded.size(); ++size)
        EXPECT_FALSE(agent::decodeBatch(std::string_view(encoded).substr(0, size), out)) << size;
    EXPECT_FALSE(agent::decodeBatch(encoded + "x", out));
    EXPECT_TRUE(agent::decodeBatch(encoded, out));
}
