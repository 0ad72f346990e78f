#include "Spool.h"

#include <Poco/Checksum.h>
#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/NumberParser.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>
#include <sys/uio.h>
#include <system_error>
#include <unistd.h>

namespace agent {
namespace {

constexpr std::uint32_t kMagic = 0x4c4f4f50; // "POOL" read as little-endian bytes
constexpr const char* kSuffix = ".seg";

struct Header {
    std::uint32_t magic;
    std::uint32_t length;
    std::uint32_t points;
    std::uint32_t crc;
};
static_assert(sizeof(Header) == Spool::kHeaderBytes);

std::system_error systemError(const std::string& what) { return std::system_error(errno, std::generic_category(), what); }

// pread that retries short reads; false at end of file or on error.
bool readFully(int fd, void* buffer, std::size_t size, std::uint64_t offset) {
    auto* out = static_cast<char*>(buffer);
    while (size > 0) {
        const ssize_t n = pread(fd, out, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        out += n;
        size -= static_cast<std::size_t>(n);
        offset += static_cast<std::uint64_t>(n);
    }
    return true;
}

} // namespace

std::uint32_t Spool::checksum(std::uint32_t points, std::string_view payload) {
    Poco::Checksum crc(Poco::Checksum::TYPE_CRC32);
    crc.update(reinterpret_cast<const char*>(&points), sizeof points);
    crc.update(payload.data(), static_cast<unsigned>(payload.size()));
    return crc.checksum();
}

Spool::Spool(Options options, Poco::Logger& logger) : options_(std::move(options)), logger_(logger) {
    Poco::File(options_.directory).createDirectories();
    std::lock_guard<std::mutex> lock(mutex_);
    recover();
    openActive();
}

Spool::~Spool() {
    sync();
    std::lock_guard<std::mutex> lock(mutex_);
    persistCursorLocked();
    if (activeFd_ >= 0) {
        if (dirty_ && options_.fsync != Fsync::Never) fdatasync(activeFd_);
        close(activeFd_);
    }
    for (Segment& segment : segments_) {
        if (segment.readFd >= 0) close(segment.readFd);
    }
}

std::string Spool::pathOf(std::uint64_t seq) const {
    char name[32];
    std::snprintf(name, sizeof name, "%020" PRIu64 "%s", seq, kSuffix);
    return options_.directory + "/" + name;
}

std::uint64_t Spool::scan(std::uint64_t seq, std::uint64_t size, std::uint64_t countFrom, std::uint64_t& records,
                          std::uint64_t& points) const {
    const int fd = open(pathOf(seq).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw systemError("cannot open spool segment " + pathOf(seq));
    std::uint64_t offset = 0;
    std::string payload;
    while (offset + kHeaderBytes <= size) {
        Header header{};
        if (!readFully(fd, &header, sizeof header, offset)) break;
        if (header.magic != kMagic || header.length > kMaxPayloadBytes || offset + kHeaderBytes + header.length > size)
            break;
        payload.resize(header.length);
        if (!readFully(fd, payload.data(), header.length, offset + kHeaderBytes)) break;
        if (checksum(header.points, payload) != header.crc) break;
        if (offset >= countFrom) {
            ++records;
            points += header.points;
        }
        offset += kHeaderBytes + header.length;
    }
    close(fd);
    return offset;
}

void Spool::recover() {
    std::vector<std::uint64_t> found;
    for (Poco::DirectoryIterator it(options_.directory), end; it != end; ++it) {
        const std::string name = it.name();
        if (name.size() != 20 + std::strlen(kSuffix) || name.compare(20, std::string::npos, kSuffix) != 0) continue;
        Poco::UInt64 seq = 0;
        if (Poco::NumberParser::tryParseUnsigned64(name.substr(0, 20), seq) && seq > 0) found.push_back(seq);
    }
    std::sort(found.begin(), found.end());

    // The cursor: the first record not yet delivered.
    std::ifstream cursor(options_.directory + "/cursor");
    Position saved;
    if (!(cursor >> saved.segment >> saved.offset)) saved = {};

    std::uint64_t savedSegmentPoints = 0; // counted from the saved cursor on
    for (std::uint64_t seq : found) {
        struct stat info {};
        if (stat(pathOf(seq).c_str(), &info) != 0) throw systemError("cannot stat " + pathOf(seq));
        const auto size = static_cast<std::uint64_t>(info.st_size);
        if (seq < saved.segment) { // fully delivered before the stop
            Poco::File(pathOf(seq)).remove();
            continue;
        }
        std::uint64_t records = 0;
        std::uint64_t points = 0;
        const std::uint64_t countFrom = seq == saved.segment ? saved.offset : 0;
        const std::uint64_t valid = scan(seq, size, countFrom, records, points);
        if (valid < size) {
            // A torn tail from a crash mid-write (or corruption): cut it so appends continue
            // after the last good record; what it held was never acknowledged whole.
            if (truncate(pathOf(seq).c_str(), static_cast<off_t>(valid)) != 0) throw systemError("cannot truncate " + pathOf(seq));
            stats_.truncatedBytes += size - valid;
            logger_.warning("spool %s: cut %Lu bytes of torn or corrupt data at the end of segment %Lu",
                            options_.directory, static_cast<Poco::UInt64>(size - valid), static_cast<Poco::UInt64>(seq));
        }
        stats_.replayedRecords += records;
        stats_.replayedPoints += points;
        if (seq == saved.segment) savedSegmentPoints = points;
        segments_.push_back(Segment{seq, valid, -1});
        if (records > 0)
            logger_.information("spool %s: segment %Lu holds %Lu undelivered points; they will be delivered",
                                options_.directory, static_cast<Poco::UInt64>(seq), static_cast<Poco::UInt64>(points));
    }
    if (segments_.empty()) segments_.push_back(Segment{std::max<std::uint64_t>(1, saved.segment), 0, -1});

    // A cursor must point at a record boundary inside an existing segment; otherwise start over
    // at the oldest record we still have (a duplicate is better than a loss).
    committed_ = saved;
    if (committed_.segment < segments_.front().seq) committed_ = {segments_.front().seq, 0};
    auto it = std::find_if(segments_.begin(), segments_.end(), [&](const Segment& s) { return s.seq >= committed_.segment; });
    if (it == segments_.end()) {
        committed_ = {segments_.back().seq, segments_.back().size};
    } else if (it->seq != committed_.segment || committed_.offset > it->size) {
        committed_ = {it->seq, 0};
    } else if (committed_.offset > 0) {
        std::uint64_t records = 0;
        std::uint64_t points = 0;
        if (scan(it->seq, committed_.offset, 0, records, points) != committed_.offset) committed_.offset = 0;
    }
    if (it != segments_.end() && committed_.segment == saved.segment && committed_.offset == 0 && saved.offset > 0) {
        // The cursor was moved back to the start of its segment: all of that segment is replayed.
        std::uint64_t records = 0;
        std::uint64_t points = 0;
        scan(it->seq, it->size, 0, records, points);
        stats_.replayedPoints += points - std::min(points, savedSegmentPoints);
    }
    persisted_ = committed_;
}

void Spool::openActive() {
    const std::string path = pathOf(segments_.back().seq);
    activeFd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (activeFd_ < 0) throw systemError("cannot open spool segment " + path);
}

void Spool::rotateLocked() {
    // With Fsync::Interval the full segment is flushed by the next sync(), not here: rotating
    // must not cost the publisher a disk flush.
    if (dirty_ && options_.fsync == Fsync::Interval) unsyncedFds_.push_back(activeFd_);
    else close(activeFd_);
    activeFd_ = -1;
    dirty_ = false;
    segments_.push_back(Segment{segments_.back().seq + 1, 0, -1});
    openActive();
}

std::uint64_t Spool::pendingBytesLocked() const {
    std::uint64_t bytes = 0;
    for (const Segment& segment : segments_) bytes += segment.size;
    if (!segments_.empty() && committed_.segment == segments_.front().seq) bytes -= std::min(bytes, committed_.offset);
    return bytes;
}

bool Spool::hasRoomFor(std::size_t payloadBytes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pendingBytesLocked() + kHeaderBytes + payloadBytes <= options_.maxBytes;
}

std::uint64_t Spool::dropOldestLocked(Position heldBefore) {
    if (segments_.size() == 1) rotateLocked(); // never delete the file being appended to
    Segment oldest = segments_.front();
    segments_.pop_front();
    std::uint64_t records = 0;
    std::uint64_t points = 0;
    const Position from = std::max(heldBefore, committed_);
    if (from.segment <= oldest.seq) scan(oldest.seq, oldest.size, from.segment == oldest.seq ? from.offset : 0, records, points);
    if (oldest.readFd >= 0) close(oldest.readFd);
    if (unlink(pathOf(oldest.seq).c_str()) != 0) logger_.error("cannot remove %s: %s", pathOf(oldest.seq), std::string(std::strerror(errno)));
    if (committed_.segment <= oldest.seq) committed_ = {segments_.front().seq, 0};
    stats_.droppedPoints += points;
    ++stats_.droppedSegments;
    return points;
}

Spool::AppendResult Spool::append(std::string_view payload, std::uint32_t points, bool dropOldest, Position heldBefore) {
    return append(payload, points, checksum(points, payload), dropOldest, heldBefore);
}

Spool::AppendResult Spool::append(std::string_view payload, std::uint32_t points, std::uint32_t crc, bool dropOldest,
                                  Position heldBefore) {
    AppendResult result;
    if (payload.size() > kMaxPayloadBytes) {
        result.error = "batch of " + std::to_string(payload.size()) + " bytes exceeds the spool's record limit";
        return result;
    }
    const std::uint64_t recordBytes = kHeaderBytes + payload.size();
    std::lock_guard<std::mutex> lock(mutex_);
    if (pendingBytesLocked() + recordBytes > options_.maxBytes) {
        if (!dropOldest) return result;
        while (pendingBytesLocked() + recordBytes > options_.maxBytes && segments_.size() > 1)
            result.droppedPoints += dropOldestLocked(heldBefore);
        if (pendingBytesLocked() + recordBytes > options_.maxBytes) result.droppedPoints += dropOldestLocked(heldBefore);
        result.droppedBefore = committed_;
    }
    if (segments_.back().size > 0 && segments_.back().size + recordBytes > options_.segmentBytes) rotateLocked();

    Segment& active = segments_.back();
    const Header header{kMagic, static_cast<std::uint32_t>(payload.size()), points, crc};
    iovec parts[2] = {{const_cast<Header*>(&header), sizeof header}, {const_cast<char*>(payload.data()), payload.size()}};
    std::uint64_t written = 0;
    while (written < recordBytes) {
        // After a short write, continue with what is left of the two parts.
        iovec rest[2];
        int count = 0;
        std::uint64_t skip = written;
        for (const iovec& part : parts) {
            if (skip >= part.iov_len) {
                skip -= part.iov_len;
                continue;
            }
            rest[count++] = {static_cast<char*>(part.iov_base) + skip, part.iov_len - skip};
            skip = 0;
        }
        const ssize_t n = writev(activeFd_, rest, count);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            result.error = std::string("cannot write to the spool: ") + std::strerror(errno);
            // Leave no partial record behind: the next append must start on a boundary.
            if (ftruncate(activeFd_, static_cast<off_t>(active.size)) != 0)
                logger_.error("spool %s: cannot cut a partial record: %s", options_.directory, std::string(std::strerror(errno)));
            return result;
        }
        written += static_cast<std::uint64_t>(n);
    }
    result.at = {active.seq, active.size};
    active.size += recordBytes;
    result.next = {active.seq, active.size};
    result.appended = true;
    dirty_ = true;
    if (options_.fsync == Fsync::EveryBatch) {
        if (fdatasync(activeFd_) != 0) logger_.error("spool %s: fdatasync: %s", options_.directory, std::string(std::strerror(errno)));
        dirty_ = false;
    }
    return result;
}

int Spool::readFdLocked(Segment& segment) {
    if (segment.readFd < 0) {
        segment.readFd = open(pathOf(segment.seq).c_str(), O_RDONLY | O_CLOEXEC);
        if (segment.readFd < 0) throw systemError("cannot open spool segment " + pathOf(segment.seq));
    }
    return segment.readFd;
}

bool Spool::read(Position from, Record& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    Position pos = std::max(from, committed_);
    for (Segment& segment : segments_) {
        if (segment.seq < pos.segment) continue;
        if (segment.seq > pos.segment) pos = {segment.seq, 0};
        if (pos.offset + kHeaderBytes > segment.size) continue; // at its end: the next segment
        const int fd = readFdLocked(segment);
        Header header{};
        bool ok = readFully(fd, &header, sizeof header, pos.offset) && header.magic == kMagic &&
                  header.length <= kMaxPayloadBytes && pos.offset + kHeaderBytes + header.length <= segment.size;
        if (ok) {
            out.payload.resize(header.length);
            ok = readFully(fd, out.payload.data(), header.length, pos.offset + kHeaderBytes) &&
                 checksum(header.points, out.payload) == header.crc;
        }
        if (!ok) {
            // Damaged after it was written (recovery checked it at start): skip the segment.
            logger_.error("spool %s: segment %Lu is damaged at offset %Lu; skipping the rest of it", options_.directory,
                          static_cast<Poco::UInt64>(segment.seq), static_cast<Poco::UInt64>(pos.offset));
            pos = {segment.seq + 1, 0};
            continue;
        }
        out.at = pos;
        out.points = header.points;
        out.next = {segment.seq, pos.offset + kHeaderBytes + header.length};
        return true;
    }
    return false;
}

void Spool::commit(Position next) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (next <= committed_) return;
    committed_ = next;
    bool removed = false;
    while (segments_.size() > 1 && segments_.front().seq < committed_.segment) {
        Segment& done = segments_.front();
        if (done.readFd >= 0) close(done.readFd);
        if (unlink(pathOf(done.seq).c_str()) != 0)
            logger_.error("cannot remove %s: %s", pathOf(done.seq), std::string(std::strerror(errno)));
        segments_.pop_front();
        removed = true;
    }
    // A delivered segment that was the active one when read: move on to the next when it is full.
    if (segments_.size() > 1 && committed_.segment == segments_.front().seq && committed_.offset >= segments_.front().size) {
        committed_ = {segments_[1].seq, 0};
        Segment& done = segments_.front();
        if (done.readFd >= 0) close(done.readFd);
        unlink(pathOf(done.seq).c_str());
        segments_.pop_front();
        removed = true;
    }
    if (removed || std::chrono::steady_clock::now() - lastPersist_ >= std::chrono::seconds(1)) persistCursorLocked();
}

Spool::Position Spool::committed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return committed_;
}

Spool::Position Spool::end() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {segments_.back().seq, segments_.back().size};
}

void Spool::sync() {
    std::vector<int> rotated;
    int active = -1;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (options_.fsync == Fsync::Never) return;
        rotated.swap(unsyncedFds_);
        if (dirty_ && activeFd_ >= 0) active = dup(activeFd_); // flushed without holding the lock
        dirty_ = false;
    }
    for (int fd : rotated) {
        if (fdatasync(fd) != 0) logger_.error("spool %s: fdatasync: %s", options_.directory, std::string(std::strerror(errno)));
        close(fd);
    }
    if (active >= 0) {
        if (fdatasync(active) != 0) logger_.error("spool %s: fdatasync: %s", options_.directory, std::string(std::strerror(errno)));
        close(active);
    }
}

void Spool::persistCursor() {
    std::lock_guard<std::mutex> lock(mutex_);
    persistCursorLocked();
}

void Spool::persistCursorLocked() {
    lastPersist_ = std::chrono::steady_clock::now();
    if (committed_ == persisted_) return;
    // Written whole to a temporary file and renamed: a crash leaves the old cursor or the new.
    const std::string path = options_.directory + "/cursor";
    const std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << committed_.segment << ' ' << committed_.offset << '\n';
        if (!out) {
            logger_.error("spool %s: cannot write %s", options_.directory, temporary);
            return;
        }
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        logger_.error("spool %s: cannot rename %s: %s", options_.directory, temporary, std::string(std::strerror(errno)));
        return;
    }
    persisted_ = committed_;
}

Spool::Stats Spool::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    Stats stats = stats_;
    stats.segments = segments_.size();
    stats.pendingBytes = pendingBytesLocked();
    for (const Segment& segment : segments_) stats.bytes += segment.size;
    return stats;
}

} // namespace agent
