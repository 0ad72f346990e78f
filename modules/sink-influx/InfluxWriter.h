// Writes batches of metrics to InfluxDB 1.x over its HTTP API: POST /write?db=..&precision=s with
// line protocol, one database per namespace, in chunks of `batchSize` points, over keep-alive
// connections, failing over between several URLs. Turns every HTTP answer into one of the sink
// outcomes (done / retry / drop) and keeps the counters the module shows as its health.
//
// Touches only the network (the URLs it is given) and the logger it is given. Never sleeps: the
// core owns retries and backoff. Not thread-safe: one writer thread calls write().
#pragma once

#include <agent/LineProtocol.h>
#include <agent/Metric.h>
#include <agent/Module.h>

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace agent::influx {

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

struct WriterStats {
    std::uint64_t pointsWritten = 0;
    std::uint64_t chunksWritten = 0;
    std::uint64_t requests = 0;
    // The losses below are counted when a batch is finished (done or drop), not at each attempt.
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
    // InfluxDB overwrites a point with the same series and time, so that is harmless); otherwise
    // Drop when some chunk was rejected; otherwise Done.
    WriteOutcome write(const Batch& batch);

    // Closes the connections.
    void close();

    const WriterStats& stats() const { return stats_; }
    Poco::JSON::Object::Ptr health() const;

private:
    // How one chunk ended.
    enum class ChunkResult { Done, Dropped, Retry };

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
        std::string label; // the URL as configured, for logs and health
        std::unique_ptr<Poco::Net::HTTPClientSession> session;
    };

    // Groups the batch by database and posts the chunks; write() then commits the counts.
    WriteOutcome writeGroups(const Batch& batch);
    // Posts points [first, last) of the group. `databaseCreated`: a CREATE DATABASE was issued for
    // this chunk already; `splitting`: this is a half of a chunk that got 413.
    ChunkResult postChunk(const Group& group, std::size_t first, std::size_t last, bool databaseCreated,
                          bool splitting);
    // Posts to the current URL and, on no answer or a 5xx, to each other URL once.
    Response postWithFailover(const std::string& path, const std::string& query, const std::string& contentType,
                              const std::string& body, bool gzip);
    Response exchange(Endpoint& endpoint, const std::string& path, const std::string& query,
                      const std::string& contentType, const std::string& body, bool gzip);
    bool createDatabase(const std::string& database);
    void failBackIfDue();
    // Counts a dropped chunk in pending_.
    void drop(const char* reason, std::size_t points);
    void noteError(int status, const std::string& error);

    const WriterSettings settings_;
    Poco::Logger& logger_;
    LineProtocolEncoder encoder_;
    std::vector<Endpoint> endpoints_;
    std::size_t current_ = 0;
    std::chrono::steady_clock::time_point failedOverAt_{};
    WriterStats stats_;

    // What the current write() lost; added to stats_ unless the write answers "retry".
    struct PendingCounts {
        std::uint64_t nonFiniteFields = 0;
        std::uint64_t unencodablePoints = 0;
        std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> drops; // reason -> (chunks, points)
    };
    PendingCounts pending_;
};

using InfluxWriterPtr = std::unique_ptr<InfluxWriter>;

} // namespace agent::influx
