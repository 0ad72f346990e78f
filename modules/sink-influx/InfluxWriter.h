// Writes batches of metrics to InfluxDB 1.x over its HTTP API: POST /write?db=..&precision=s with
// line protocol, one database per namespace, in chunks of `batchSize` points, over keep-alive
// connections, failing over between several URLs. Turns every HTTP answer into one of the sink
// outcomes (done / retry / drop) with exact counts of the points InfluxDB kept and refused, and
// keeps the counters the module shows as its health.
//
// Touches only the network (the URLs it is given) and the logger it is given. Never sleeps: the
// core owns retries and backoff. Thread-safe: up to `concurrency` threads call write() at once,
// each request on a keep-alive session of its own from a pool (at most `concurrency` sessions per
// URL, reused across writes); more callers than that wait for a free session.
#pragma once

#include <agent/LineProtocol.h>
#include <agent/Metric.h>
#include <agent/Module.h>

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace agent::influx {

// The default of `concurrency`: the knee of the measured throughput against influxd (README).
inline constexpr unsigned kDefaultConcurrency = 4;
inline constexpr unsigned kMaxConcurrency = 32;

struct WriterSettings {
    std::vector<std::string> urls{"http://127.0.0.1:8086"};
    std::string databaseTemplate = "{ns}";  // "{ns}" = the metric's namespace
    std::string emptyNamespace = "default"; // what "{ns}" becomes for a metric with no namespace
    std::string retentionPolicy;            // "" = the database's default policy
    std::string username;                   // "" = no authentication
    std::string password;
    bool createDatabase = true;
    std::size_t batchSize = 5000;                         // points per request
    Poco::Timespan timeout = Poco::Timespan(5, 0);        // connect, send and receive, each
    Poco::Timespan failbackAfter = Poco::Timespan(60, 0); // then try the first URL again
    bool gzip = false;
    unsigned concurrency = kDefaultConcurrency; // writes in flight at once, 1..kMaxConcurrency
};

struct SettingsProblem {
    std::string key; // the config key it concerns
    std::string reason;
};

// Every problem of the settings, so that configure() reports them all at once.
std::vector<SettingsProblem> checkSettings(const WriterSettings& settings);

// The database a namespace's metrics go to: the template with every "{ns}" replaced.
std::string databaseFor(const WriterSettings& settings, const std::string& ns);

// Database names this sink writes to: [0-9A-Za-z._-]+, at most 255 characters. InfluxDB itself
// accepts more, but such a name in a URL or an InfluxQL statement is asking for trouble.
bool isValidDatabaseName(const std::string& name);

// Why points were dropped; the keys of the health's "chunks_dropped" and "points_dropped".
inline constexpr const char* kDropBadRequest = "bad_request";           // 400: partial write, unable to parse
inline constexpr const char* kDropTooLarge = "too_large";               // 413 for a single point
inline constexpr const char* kDropRejected = "rejected";                // another 4xx that retrying cannot fix
inline constexpr const char* kDropInvalidDatabase = "invalid_database"; // the template gave a bad name

// How many of a chunk's points a 400 answer says InfluxDB refused: N of "partial write: ...
// dropped=N", or, when that is 0 and lines were unparsable, the number of "unable to parse"
// lines. 0 when the answer does not say (then the whole chunk counts as refused).
std::size_t refusedPointsOf(const std::string& error, std::size_t points);

// A snapshot of the writer's counters (stats() copies them under the writer's lock).
struct WriterStats {
    std::uint64_t pointsWritten = 0; // points InfluxDB kept (a retried batch's chunks count again)
    std::uint64_t chunksWritten = 0; // chunks answered 2xx or partly written (400 "partial write")
    std::uint64_t requests = 0;
    std::uint64_t partialWrites = 0;     // 400 answers for which InfluxDB kept some of the chunk's points
    std::uint64_t connectionsOpened = 0; // TCP connections made (first use, reconnects after errors)
    // The losses below are counted when a batch is finished (done or drop), not at each attempt.
    // A chunk is counted in chunksDropped only when none of its points was kept.
    std::map<std::string, std::uint64_t> chunksDropped; // by reason (kDrop...)
    std::map<std::string, std::uint64_t> pointsDropped; // by reason (kDrop...)
    std::uint64_t nonFiniteFields = 0;                  // NaN / infinite doubles left out of their point
    std::uint64_t unencodablePoints = 0;                // points with no field left (only NaN / infinities)
    std::uint64_t databasesCreated = 0;
    std::uint64_t splits = 0;       // 413 answers that split a chunk in two
    std::uint64_t failovers = 0;    // switches to another URL
    int lastStatus = 0;             // HTTP status of the latest request; 0 = no answer
    std::string lastError;          // "" until something failed
    std::int64_t lastErrorTime = 0; // seconds since the epoch
    std::string currentUrl;
};

class InfluxWriter {
public:
    // `settings` must have passed checkSettings().
    InfluxWriter(WriterSettings settings, Poco::Logger& logger);
    ~InfluxWriter();
    InfluxWriter(const InfluxWriter&) = delete;
    InfluxWriter& operator=(const InfluxWriter&) = delete;

    // Groups the batch by database and posts each group in chunks of batchSize points.
    // Retry when any chunk must be retried (the done ones are sent again with the whole batch:
    // InfluxDB overwrites a point with the same series and time, so that is harmless). Otherwise
    // Done with delivered = the points InfluxDB kept and rejected = the rest of the batch (refused
    // chunks or points, invalid database names, points with no encodable field); or Drop when
    // InfluxDB kept nothing and refused something. Safe to call from several threads at once.
    WriteResult write(const Batch& batch);

    // Closes the connections (idle ones now, the ones in use when their request ends).
    void close();

    WriterStats stats() const;
    Poco::JSON::Object::Ptr health() const;

private:
    // How one chunk ended.
    enum class ChunkResult { Done, Dropped, Retry };

    // What one write() call gathers; added to the stats unless the write answers "retry".
    struct WriteState {
        std::uint64_t nonFiniteFields = 0;
        std::uint64_t unencodablePoints = 0;
        std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> drops; // reason -> (chunks, points)
        std::size_t delivered = 0; // points InfluxDB kept
        bool refused = false;      // some points were refused for good (not just unencodable)
    };

    // A keep-alive session that can tell whether its next request opens a new connection.
    class Session : public Poco::Net::HTTPClientSession {
    public:
        using Poco::Net::HTTPClientSession::HTTPClientSession;
        // True when the next sendRequest() connects (first use, after an error, or after the
        // keep-alive timeout, when Poco closes the old connection itself).
        bool willConnect() const { return !connected() || mustReconnect(); }
        std::uint64_t generation = 0; // the pool's generation when it was made (close() starts a new one)
    };
    using SessionPtr = std::unique_ptr<Session>;

    // The points of one database, encoded; point i is text[ends[i-1], ends[i]).
    struct Group {
        std::string database;
        std::string text;
        std::vector<std::size_t> ends;
    };

    // One HTTP exchange: status 0 when there was no answer (connection refused, timeout...).
    struct Response {
        int status = 0;
        std::string error; // the server's {"error": ...}, or why there was no answer
        std::string body;  // the start of the answer's body
        std::string url;   // the URL that answered (or did not)
    };

    struct Endpoint {
        Poco::URI uri;
        std::string label;             // the URL as configured, for logs and health
        std::vector<SessionPtr> idle;  // sessions not in use, the latest returned last (poolMutex_)
        unsigned sessions = 0;         // sessions of this URL that exist, idle or in use (poolMutex_)
    };

    // Groups the batch by database and posts the chunks; write() then commits the counts.
    WriteOutcome writeGroups(const Batch& batch, WriteState& state);
    // Posts points [first, last) of the group. `databaseCreated`: a CREATE DATABASE was issued for
    // this chunk already; `splitting`: this is a half of a chunk that got 413.
    ChunkResult postChunk(const Group& group, std::size_t first, std::size_t last, bool databaseCreated,
                          bool splitting, WriteState& state);
    // Posts to the current URL and, on no answer or a 5xx, to each other URL once.
    Response postWithFailover(const std::string& path, const std::string& query, const std::string& contentType,
                              const std::string& body, bool gzip);
    Response exchange(std::size_t endpoint, const std::string& path, const std::string& query,
                      const std::string& contentType, const std::string& body, bool gzip);
    // A session of the endpoint from the pool, or a new one while fewer than `concurrency` exist;
    // otherwise waits for one to be returned.
    SessionPtr acquire(std::size_t endpoint);
    void release(std::size_t endpoint, SessionPtr session);
    bool createDatabase(const std::string& database);
    void failBackIfDue();
    std::size_t currentEndpoint() const;
    // Counts dropped points (and, when `wholeChunk`, a dropped chunk) in the write's state.
    static void drop(WriteState& state, const char* reason, std::size_t points, bool wholeChunk = true);
    void noteError(int status, const std::string& error);

    const WriterSettings settings_;
    Poco::Logger& logger_;
    const LineProtocolEncoder encoder_;

    std::mutex poolMutex_; // guards every Endpoint's idle and sessions, and generation_
    std::condition_variable sessionReturned_;
    std::vector<Endpoint> endpoints_; // the vector itself never changes after construction
    std::uint64_t generation_ = 0;

    mutable std::mutex stateMutex_; // guards everything below up to the atomics
    std::size_t current_ = 0;
    std::chrono::steady_clock::time_point failedOverAt_{};
    std::map<std::string, std::uint64_t> chunksDropped_;
    std::map<std::string, std::uint64_t> pointsDropped_;
    std::string lastError_;
    std::int64_t lastErrorTime_ = 0;

    std::atomic<std::uint64_t> pointsWritten_{0};
    std::atomic<std::uint64_t> chunksWritten_{0};
    std::atomic<std::uint64_t> requests_{0};
    std::atomic<std::uint64_t> partialWrites_{0};
    std::atomic<std::uint64_t> connectionsOpened_{0};
    std::atomic<std::uint64_t> nonFiniteFields_{0};
    std::atomic<std::uint64_t> unencodablePoints_{0};
    std::atomic<std::uint64_t> databasesCreated_{0};
    std::atomic<std::uint64_t> splits_{0};
    std::atomic<std::uint64_t> failovers_{0};
    std::atomic<int> lastStatus_{0};
};

using InfluxWriterPtr = std::unique_ptr<InfluxWriter>;

} // namespace agent::influx
