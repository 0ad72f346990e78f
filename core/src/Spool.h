// A sink's durable queue on disk: append-only segment files of checksummed records, read in
// order by the sink's writer, deleted once delivered. What publish() acknowledged survives a
// crash: at start a torn tail is cut off and everything after the last delivered record (the
// cursor) is delivered again. Bounded by bytes: when full, the oldest segment goes (counted).
//
// Record on disk: magic u32 | payload length u32 | points u32 | crc32(points, payload) u32 | payload
#pragma once

#include <Poco/Logger.h>

#include <compare>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace agent {

// A record's place in a spool: segment number and byte offset in it.
struct SpoolPosition {
    std::uint64_t segment = 0;
    std::uint64_t offset = 0;
    auto operator<=>(const SpoolPosition&) const = default;
};

class Spool {
public:
    enum class Fsync { EveryBatch, Interval, Never };

    struct Options {
        std::string directory;
        std::uint64_t maxBytes = 512ull << 20;
        std::uint64_t segmentBytes = 8ull << 20;
        Fsync fsync = Fsync::Interval;
    };

    using Position = SpoolPosition;

    struct Record {
        Position at;
        Position next;
        std::uint32_t points = 0;
        std::string payload;
    };

    struct AppendResult {
        bool appended = false;
        std::string error;              // why not, when not full (disk full, I/O error)
        Position at;
        Position next;
        std::uint64_t droppedPoints = 0; // points of old segments dropped to make room
        Position droppedBefore;          // records before this position are gone
    };

    struct Stats {
        std::uint64_t bytes = 0;        // on disk
        std::uint64_t pendingBytes = 0; // not yet delivered
        std::uint64_t segments = 0;
        std::uint64_t droppedPoints = 0;
        std::uint64_t droppedSegments = 0;
        std::uint64_t truncatedBytes = 0; // torn or corrupt tails cut at start
        std::uint64_t replayedRecords = 0; // undelivered records found at start
        std::uint64_t replayedPoints = 0;  // and their points
    };

    static constexpr std::uint32_t kHeaderBytes = 16;
    static constexpr std::uint32_t kMaxPayloadBytes = 64u << 20;

    // Opens (creating) the directory and recovers what a previous run left. Throws
    // std::system_error when the directory or a segment cannot be used.
    Spool(Options options, Poco::Logger& logger);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    bool hasRoomFor(std::size_t payloadBytes) const;
    // Appends one record. When it does not fit: with dropOldest, whole old segments are dropped
    // until it does; without, nothing is written (appended = false, error empty). Records before
    // `heldBefore` are delivered or in the reader's hands, so dropping them loses nothing and
    // they are not counted as dropped.
    AppendResult append(std::string_view payload, std::uint32_t points, bool dropOldest, Position heldBefore = {});
    // The same with the record's checksum (checksum(points, payload)) computed by the caller,
    // outside the spool's lock, and once for every spool the payload goes to.
    AppendResult append(std::string_view payload, std::uint32_t points, std::uint32_t crc, bool dropOldest,
                        Position heldBefore);
    static std::uint32_t checksum(std::uint32_t points, std::string_view payload);

    // Reads the first record at or after `from`; false when there is none yet.
    bool read(Position from, Record& out);
    // Everything before `next` has been delivered: consumed segments are deleted.
    void commit(Position next);
    Position committed() const;
    // The position after the last record.
    Position end() const;

    // Flushes the active segment to disk (for Fsync::Interval, called by a timer).
    void sync();
    // Writes the cursor file now (it is written at most once a second otherwise).
    void persistCursor();
    Stats stats() const;
    const Options& options() const { return options_; }

private:
    struct Segment {
        std::uint64_t seq = 0;
        std::uint64_t size = 0;
        int readFd = -1;
    };

    std::string pathOf(std::uint64_t seq) const;
    void recover();
    // Scans records from the start; returns the end of the last valid one and counts records
    // from `countFrom` on.
    std::uint64_t scan(std::uint64_t seq, std::uint64_t size, std::uint64_t countFrom, std::uint64_t& records,
                       std::uint64_t& points) const;
    void openActive();
    void rotateLocked();
    std::uint64_t pendingBytesLocked() const;
    // Drops the oldest segment; returns its points from `heldBefore` on.
    std::uint64_t dropOldestLocked(Position heldBefore);
    int readFdLocked(Segment& segment);
    void persistCursorLocked();

    const Options options_;
    Poco::Logger& logger_;

    mutable std::mutex mutex_; // guards everything below
    std::deque<Segment> segments_; // oldest first; back() is the active one
    int activeFd_ = -1;
    bool dirty_ = false;
    std::vector<int> unsyncedFds_; // rotated segments not flushed yet (Fsync::Interval)
    Position committed_;
    Position persisted_;
    std::chrono::steady_clock::time_point lastPersist_{};
    Stats stats_;
};

} // namespace agent
