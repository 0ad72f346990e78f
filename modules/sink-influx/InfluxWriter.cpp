#include "InfluxWriter.h"

#include <Poco/DeflatingStream.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPBasicCredentials.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/String.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <sstream>
#include <string_view>

namespace agent::influx {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxDatabaseName = 255;
// An answer body longer than this is not an InfluxDB answer to a write; only its start is kept.
constexpr std::size_t kKeptBodyBytes = 64 * 1024;
// Beyond this the rest of a body is not read; the connection is dropped instead.
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;

std::int64_t wallSeconds() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// Query-string value: everything but unreserved characters percent-encoded.
std::string encodeQueryValue(const std::string& value) {
    std::string encoded;
    Poco::URI::encode(value, "!#$&'()*+,/:;=?@[]\"<>\\^`{|} ", encoded);
    return encoded;
}

// The part of a URL path before "/write": "" or "/prefix" (InfluxDB behind a proxy path).
std::string basePath(const Poco::URI& uri) {
    std::string path = uri.getPath();
    while (!path.empty() && path.back() == '/')
        path.pop_back();
    return path;
}

std::string gzipped(std::string_view text) {
    std::ostringstream out;
    Poco::DeflatingOutputStream deflate(out, Poco::DeflatingStreamBuf::STREAM_GZIP);
    deflate.write(text.data(), static_cast<std::streamsize>(text.size()));
    deflate.close();
    return std::move(out).str();
}

// InfluxDB answers errors as {"error": "..."} and repeats the message in X-Influxdb-Error.
std::string errorMessage(const std::string& body, const Poco::Net::HTTPResponse& answer) {
    try {
        Poco::JSON::Parser parser;
        const Poco::Dynamic::Var parsed = parser.parse(body);
        if (const auto object = parsed.extract<Poco::JSON::Object::Ptr>(); object && object->has("error"))
            return object->getValue<std::string>("error");
    } catch (const Poco::Exception&) {
        // Not JSON (a proxy's page, an empty body): fall back to the header and the text below.
    }
    if (answer.has("X-Influxdb-Error")) return answer.get("X-Influxdb-Error");
    std::string text = Poco::trim(body.substr(0, 200));
    return text.empty() ? answer.getReason() : text;
}

// The first error of a /query answer: {"results":[{"statement_id":0,"error":"..."}]}.
std::string queryError(const std::string& body) {
    try {
        Poco::JSON::Parser parser;
        const auto object = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
        if (object->has("error")) return object->getValue<std::string>("error");
        const Poco::JSON::Array::Ptr results = object->getArray("results");
        if (!results) return "no results in the answer";
        for (std::size_t i = 0; i < results->size(); ++i) {
            const Poco::JSON::Object::Ptr result = results->getObject(static_cast<unsigned>(i));
            if (result && result->has("error")) return result->getValue<std::string>("error");
        }
        return {};
    } catch (const Poco::Exception& error) {
        return "unreadable answer: " + error.displayText();
    }
}

std::string describe(int status, const std::string& error) {
    if (status == 0) return error;
    return "HTTP " + std::to_string(status) + (error.empty() ? std::string() : ": " + error);
}

} // namespace

std::vector<SettingsProblem> checkSettings(const WriterSettings& settings) {
    std::vector<SettingsProblem> problems;
    if (settings.urls.empty()) problems.push_back({"urls", "must list at least one URL"});
    for (const std::string& url : settings.urls) {
        try {
            const Poco::URI uri(url);
            if (uri.getScheme() == "https")
                problems.push_back(
                    {"urls", "\"" + url + "\": https is not supported (put a TLS proxy on loopback in front)"});
            else if (uri.getScheme() != "http")
                problems.push_back({"urls", "\"" + url + "\" is not an http:// URL"});
            else if (uri.getHost().empty())
                problems.push_back({"urls", "\"" + url + "\" names no host"});
            else if (!uri.getRawQuery().empty() || !uri.getFragment().empty())
                problems.push_back({"urls", "\"" + url + "\": give the base URL, without a query or fragment"});
        } catch (const Poco::Exception& error) {
            problems.push_back({"urls", "\"" + url + "\" is not a URL: " + error.displayText()});
        }
    }
    if (settings.databaseTemplate.empty()) {
        problems.push_back({"database", "must not be empty"});
    } else if (!isValidDatabaseName(databaseFor(settings, "ns"))) {
        problems.push_back({"database", "\"" + settings.databaseTemplate +
                                            "\" does not give a valid database name ([0-9A-Za-z._-] and {ns})"});
    }
    if (!isValidDatabaseName(settings.emptyNamespace))
        problems.push_back(
            {"empty_namespace", "\"" + settings.emptyNamespace + "\" is not a valid name ([0-9A-Za-z._-]+)"});
    if (settings.retentionPolicy.find_first_of("\r\n") != std::string::npos)
        problems.push_back({"retention_policy", "must be one line"});
    if (settings.username.empty() && !settings.password.empty())
        problems.push_back({"password", "is set but username is empty"});
    if (settings.batchSize < 1 || settings.batchSize > 1'000'000)
        problems.push_back({"batch_size", "must be between 1 and 1000000 points"});
    if (settings.timeout.totalMilliseconds() < 1 || settings.timeout.totalSeconds() > 3600)
        problems.push_back({"timeout", "must be between 0.001 and 3600 seconds"});
    if (settings.failbackAfter.totalMicroseconds() < 0) problems.push_back({"failback_after", "must not be negative"});
    if (settings.concurrency < 1 || settings.concurrency > kMaxConcurrency)
        problems.push_back({"concurrency", "must be between 1 and " + std::to_string(kMaxConcurrency)});
    return problems;
}

std::string databaseFor(const WriterSettings& settings, const std::string& ns) {
    const std::string& value = ns.empty() ? settings.emptyNamespace : ns;
    std::string database = settings.databaseTemplate;
    static const std::string placeholder = "{ns}";
    for (std::size_t at = database.find(placeholder); at != std::string::npos;
         at = database.find(placeholder, at + value.size())) {
        database.replace(at, placeholder.size(), value);
    }
    return database;
}

bool isValidDatabaseName(const std::string& name) {
    return agent::isValidName(name, kMaxDatabaseName);
}

std::size_t refusedPointsOf(const std::string& error, std::size_t points) {
    if (error.find("partial write") == std::string::npos) return 0;
    std::size_t refused = 0;
    static const std::string key = "dropped=";
    if (const std::size_t at = error.rfind(key); at != std::string::npos) {
        std::size_t digit = at + key.size();
        while (digit < error.size() && error[digit] >= '0' && error[digit] <= '9') {
            refused = refused * 10 + static_cast<std::size_t>(error[digit] - '0');
            if (refused > points) return points;
            ++digit;
        }
    }
    if (refused == 0) {
        // Unparsable lines next to parsable ones: influxd writes the others and answers
        // "partial write: unable to parse '...': reason\nunable to parse ... dropped=0".
        static const std::string unparsable = "unable to parse";
        for (std::size_t at = error.find(unparsable); at != std::string::npos;
             at = error.find(unparsable, at + unparsable.size()))
            ++refused;
    }
    return std::min(refused, points);
}

InfluxWriter::InfluxWriter(WriterSettings settings, Poco::Logger& logger)
    : settings_(std::move(settings)), logger_(logger) {
    if (settings_.concurrency < 1) throw Poco::InvalidArgumentException("sink-influx: concurrency must be at least 1");
    for (const std::string& url : settings_.urls)
        endpoints_.push_back(Endpoint{Poco::URI(url), url, {}, 0});
    if (endpoints_.empty()) throw Poco::InvalidArgumentException("sink-influx: no URL to write to");
}

InfluxWriter::~InfluxWriter() {
    close();
}

void InfluxWriter::close() {
    std::lock_guard<std::mutex> lock(poolMutex_);
    ++generation_; // the sessions in use now are closed when they come back
    for (Endpoint& endpoint : endpoints_) {
        for (SessionPtr& session : endpoint.idle)
            session->reset();
        endpoint.sessions -= static_cast<unsigned>(endpoint.idle.size());
        endpoint.idle.clear();
    }
    sessionReturned_.notify_all();
}

InfluxWriter::SessionPtr InfluxWriter::acquire(std::size_t index) {
    std::unique_lock<std::mutex> lock(poolMutex_);
    Endpoint& endpoint = endpoints_[index];
    sessionReturned_.wait(lock, [&] { return !endpoint.idle.empty() || endpoint.sessions < settings_.concurrency; });
    if (!endpoint.idle.empty()) {
        SessionPtr session = std::move(endpoint.idle.back());
        endpoint.idle.pop_back();
        return session;
    }
    ++endpoint.sessions;
    auto session = std::make_unique<Session>(endpoint.uri.getHost(), endpoint.uri.getPort());
    session->generation = generation_;
    session->setTimeout(settings_.timeout);
    session->setKeepAlive(true);
    return session;
}

void InfluxWriter::release(std::size_t index, SessionPtr session) {
    std::lock_guard<std::mutex> lock(poolMutex_);
    Endpoint& endpoint = endpoints_[index];
    if (session->generation != generation_) {
        session->reset();
        --endpoint.sessions;
    } else {
        endpoint.idle.push_back(std::move(session));
    }
    sessionReturned_.notify_one();
}

WriteResult InfluxWriter::write(const Batch& batch) {
    failBackIfDue();
    WriteState state;
    const WriteOutcome outcome = writeGroups(batch, state);
    // A batch answered "retry" comes back whole: what it lost is counted once, when it is finished.
    if (outcome == WriteOutcome::Retry) return WriteOutcome::Retry;
    nonFiniteFields_ += state.nonFiniteFields;
    unencodablePoints_ += state.unencodablePoints;
    {
        std::lock_guard<std::mutex> lock(stateMutex_);
        for (const auto& [reason, counts] : state.drops) {
            if (counts.first > 0) chunksDropped_[reason] += counts.first; // none: only points of partial writes
            pointsDropped_[reason] += counts.second;
        }
    }
    const std::size_t delivered = std::min(state.delivered, batch.size());
    const std::size_t rejected = batch.size() - delivered;
    if (delivered == 0 && state.refused) return WriteResult(WriteOutcome::Drop, 0, rejected);
    return WriteResult(WriteOutcome::Done, delivered, rejected);
}

WriteOutcome InfluxWriter::writeGroups(const Batch& batch, WriteState& state) {
    // Group by database in order of first appearance; the namespace -> group lookup is cached,
    // since a batch usually holds one or two namespaces.
    constexpr std::size_t kInvalid = static_cast<std::size_t>(-1);
    std::vector<Group> groups;
    std::map<std::string, std::size_t> groupOfNamespace;
    std::size_t invalidPoints = 0;
    std::string invalidDatabase;
    for (const Metric& metric : batch) {
        for (const Field& field : metric.fields) {
            if (const double* d = std::get_if<double>(&field.value); d != nullptr && !std::isfinite(*d))
                ++state.nonFiniteFields;
        }
        auto known = groupOfNamespace.find(metric.ns);
        if (known == groupOfNamespace.end()) {
            const std::string database = databaseFor(settings_, metric.ns);
            std::size_t index = kInvalid;
            if (isValidDatabaseName(database)) {
                const auto same = std::find_if(groups.begin(), groups.end(),
                                               [&database](const Group& g) { return g.database == database; });
                index = static_cast<std::size_t>(same - groups.begin());
                if (same == groups.end()) groups.push_back(Group{database, {}, {}});
            } else {
                invalidDatabase = database;
            }
            known = groupOfNamespace.emplace(metric.ns, index).first;
        }
        if (known->second == kInvalid) {
            ++invalidPoints;
            continue;
        }
        Group& group = groups[known->second];
        if (encoder_.append(group.text, metric))
            group.ends.push_back(group.text.size());
        else
            ++state.unencodablePoints;
    }

    if (invalidPoints > 0) {
        logger_.error("dropped %z points: their namespace gives database \"%s\", not a valid name", invalidPoints,
                      invalidDatabase);
        noteError(lastStatus_.load(), "invalid database name \"" + invalidDatabase + "\"");
        drop(state, kDropInvalidDatabase, invalidPoints);
    }
    for (const Group& group : groups) {
        const std::size_t points = group.ends.size();
        for (std::size_t first = 0; first < points; first += settings_.batchSize) {
            const std::size_t last = std::min(points, first + settings_.batchSize);
            const ChunkResult result = postChunk(group, first, last, false, false, state);
            // The rest waits for the core's next attempt, which sends the whole batch again.
            if (result == ChunkResult::Retry) return WriteOutcome::Retry;
        }
    }
    return WriteOutcome::Done;
}

InfluxWriter::ChunkResult InfluxWriter::postChunk(const Group& group, std::size_t first, std::size_t last,
                                                  bool databaseCreated, bool splitting, WriteState& state) {
    const std::size_t points = last - first;
    const std::size_t from = first == 0 ? 0 : group.ends[first - 1];
    const std::string_view text(group.text.data() + from, group.ends[last - 1] - from);
    std::string query = "db=" + encodeQueryValue(group.database) + "&precision=s";
    if (!settings_.retentionPolicy.empty()) query += "&rp=" + encodeQueryValue(settings_.retentionPolicy);

    const Response response =
        settings_.gzip ? postWithFailover("/write", query, "text/plain; charset=utf-8", gzipped(text), true)
                       : postWithFailover("/write", query, "text/plain; charset=utf-8", std::string(text), false);
    const int status = response.status;
    const std::string what = describe(status, response.error);

    if (status >= 200 && status < 300) {
        pointsWritten_ += points;
        ++chunksWritten_;
        state.delivered += points;
        return ChunkResult::Done;
    }
    if (status == 400) {
        // A partial write or unparsable line: InfluxDB kept what it could, resending cannot help.
        noteError(status, response.error);
        const std::size_t refused = refusedPointsOf(response.error, points);
        if (refused > 0 && refused < points) {
            const std::size_t kept = points - refused;
            logger_.error("database %s: InfluxDB kept %z of a chunk of %z points and refused %z (%s); the %z are "
                          "dropped",
                          group.database, kept, points, refused, what, refused);
            pointsWritten_ += kept;
            ++chunksWritten_;
            ++partialWrites_;
            state.delivered += kept;
            drop(state, kDropBadRequest, refused, false);
            return ChunkResult::Dropped;
        }
        logger_.error("database %s: InfluxDB rejected a chunk of %z points (%s); dropped", group.database, points,
                      what);
        drop(state, kDropBadRequest, points);
        return ChunkResult::Dropped;
    }
    if (status == 413) {
        if (points == 1) {
            logger_.error("database %s: a single point of %z bytes is too large for InfluxDB (%s); dropped",
                          group.database, text.size(), what);
            noteError(status, response.error);
            drop(state, kDropTooLarge, 1);
            return ChunkResult::Dropped;
        }
        ++splits_;
        if (!splitting) // one line for the whole cascade of halvings
            logger_.information(
                "database %s: %z points (%z bytes) are too large for one request (%s); sending them in parts",
                group.database, points, text.size(), what);
        const std::size_t middle = first + points / 2;
        const ChunkResult front = postChunk(group, first, middle, databaseCreated, true, state);
        if (front == ChunkResult::Retry) return ChunkResult::Retry;
        const ChunkResult back = postChunk(group, middle, last, databaseCreated, true, state);
        if (back == ChunkResult::Retry) return ChunkResult::Retry;
        return front == ChunkResult::Dropped || back == ChunkResult::Dropped ? ChunkResult::Dropped : ChunkResult::Done;
    }
    if (status == 404 && response.error.find("database not found") != std::string::npos) {
        if (settings_.createDatabase && !databaseCreated) {
            if (!createDatabase(group.database)) return ChunkResult::Retry;
            return postChunk(group, first, last, true, splitting, state);
        }
        logger_.warning("database %s does not exist (%s)%s; will retry", group.database, what,
                        std::string(settings_.createDatabase ? "" : " and create_database is off"));
        noteError(status, response.error);
        return ChunkResult::Retry;
    }
    if (status == 401 || status == 403) {
        logger_.error("database %s: InfluxDB refused the credentials of user \"%s\" (%s); will retry", group.database,
                      settings_.username, what);
        noteError(status, response.error);
        return ChunkResult::Retry;
    }
    if (status >= 400 && status < 500 && status != 404 && status != 408 && status != 429) {
        logger_.error("database %s: InfluxDB rejected a chunk of %z points (%s); dropped", group.database, points,
                      what);
        noteError(status, response.error);
        drop(state, kDropRejected, points);
        return ChunkResult::Dropped;
    }
    // No answer, timeout, 404 (a proxy's), 408, 429, 5xx, or a status the write API never gives.
    logger_.warning("database %s: write of %z points to %s failed (%s); will retry", group.database, points,
                    response.url, what);
    noteError(status, response.error);
    return ChunkResult::Retry;
}

InfluxWriter::Response InfluxWriter::postWithFailover(const std::string& path, const std::string& query,
                                                      const std::string& contentType, const std::string& body,
                                                      bool gzip) {
    Response response;
    for (std::size_t tried = 0; tried < endpoints_.size(); ++tried) {
        const std::size_t index = currentEndpoint();
        response = exchange(index, path, query, contentType, body, gzip);
        response.url = endpoints_[index].label;
        lastStatus_ = response.status;
        const bool down = response.status == 0 || response.status >= 500;
        if (!down || endpoints_.size() == 1) return response;
        // Move on even after the last URL: the next write starts where this round ends. Writes in
        // flight at the same time find the same URL down: only the first one moves on from it.
        std::lock_guard<std::mutex> lock(stateMutex_);
        if (current_ != index) continue;
        const std::size_t next = (current_ + 1) % endpoints_.size();
        logger_.warning("%s: %s; failing over to %s", endpoints_[index].label,
                        describe(response.status, response.error), endpoints_[next].label);
        if (current_ == 0) failedOverAt_ = Clock::now();
        current_ = next;
        ++failovers_;
    }
    return response;
}

InfluxWriter::Response InfluxWriter::exchange(std::size_t index, const std::string& path, const std::string& query,
                                              const std::string& contentType, const std::string& body, bool gzip) {
    using Poco::Net::HTTPMessage;
    using Poco::Net::HTTPRequest;
    Response response;
    const std::string target = basePath(endpoints_[index].uri) + path + (query.empty() ? "" : "?" + query);
    SessionPtr pooled = acquire(index);
    Session& session = *pooled;
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = !session.willConnect();
        try {
            HTTPRequest request(HTTPRequest::HTTP_POST, target, HTTPMessage::HTTP_1_1);
            request.setKeepAlive(true);
            request.setContentType(contentType);
            request.setContentLength(static_cast<std::streamsize>(body.size()));
            if (gzip) request.set("Content-Encoding", "gzip");
            if (!settings_.username.empty())
                Poco::Net::HTTPBasicCredentials(settings_.username, settings_.password).authenticate(request);
            ++requests_;
            std::ostream& out = session.sendRequest(request);
            if (!reused) ++connectionsOpened_; // connected (a refused connect throws above)
            // The header has gone out in a segment of its own; without TCP_NODELAY the body's last
            // partial segment waits for its ACK, which the peer delays: 40 ms per request.
            session.socket().setNoDelay(true);
            out.write(body.data(), static_cast<std::streamsize>(body.size()));
            Poco::Net::HTTPResponse answer;
            std::istream& in = session.receiveResponse(answer);
            std::string text;
            char buffer[8192];
            std::size_t total = 0;
            while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
                const std::size_t got = static_cast<std::size_t>(in.gcount());
                if (text.size() < kKeptBodyBytes) text.append(buffer, std::min(got, kKeptBodyBytes - text.size()));
                total += got;
                if (total > kMaxBodyBytes) {
                    session.reset(); // the unread rest would be taken for the next answer
                    break;
                }
            }
            response.status = static_cast<int>(answer.getStatus());
            response.body = text;
            if (response.status >= 300) response.error = errorMessage(text, answer);
            break;
        } catch (const Poco::TimeoutException& error) {
            session.reset();
            response.status = 0;
            response.error = "timeout after " + std::to_string(settings_.timeout.totalMilliseconds()) + " ms (" +
                             error.displayText() + ")";
            break; // the peer is there but slow: a second attempt would wait as long again
        } catch (const Poco::Exception& error) {
            session.reset();
            response.status = 0;
            response.error = error.displayText();
            // A reused keep-alive connection may have been closed by the peer (a restart, an idle
            // timeout): one more attempt on a fresh connection tells that from a peer that is down.
            if (!reused) break;
        }
    }
    release(index, std::move(pooled));
    return response;
}

bool InfluxWriter::createDatabase(const std::string& database) {
    // The name passed isValidDatabaseName(), so it needs no escaping inside the quotes.
    const std::string statement = "CREATE DATABASE \"" + database + "\"";
    const Response response =
        postWithFailover("/query", "", "application/x-www-form-urlencoded", "q=" + encodeQueryValue(statement), false);
    std::string error;
    if (response.status == 200)
        error = queryError(response.body);
    else
        error = describe(response.status, response.error);
    if (!error.empty()) {
        logger_.error("cannot create database %s: %s; will retry", database, error);
        noteError(response.status, "CREATE DATABASE " + database + ": " + error);
        return false;
    }
    ++databasesCreated_;
    logger_.information("created database %s on %s", database, response.url);
    return true;
}

void InfluxWriter::failBackIfDue() {
    std::lock_guard<std::mutex> lock(stateMutex_);
    if (current_ == 0 ||
        Clock::now() - failedOverAt_ < std::chrono::microseconds(settings_.failbackAfter.totalMicroseconds()))
        return;
    logger_.information("trying the first URL %s again (on %s since the failover)", endpoints_.front().label,
                        endpoints_[current_].label);
    current_ = 0;
}

std::size_t InfluxWriter::currentEndpoint() const {
    std::lock_guard<std::mutex> lock(stateMutex_);
    return current_;
}

void InfluxWriter::drop(WriteState& state, const char* reason, std::size_t points, bool wholeChunk) {
    if (wholeChunk) ++state.drops[reason].first;
    state.drops[reason].second += points;
    state.refused = true;
}

void InfluxWriter::noteError(int status, const std::string& error) {
    lastStatus_ = status;
    std::lock_guard<std::mutex> lock(stateMutex_);
    lastError_ = describe(status, error);
    lastErrorTime_ = wallSeconds();
}

WriterStats InfluxWriter::stats() const {
    WriterStats stats;
    stats.pointsWritten = pointsWritten_.load();
    stats.chunksWritten = chunksWritten_.load();
    stats.requests = requests_.load();
    stats.partialWrites = partialWrites_.load();
    stats.connectionsOpened = connectionsOpened_.load();
    stats.nonFiniteFields = nonFiniteFields_.load();
    stats.unencodablePoints = unencodablePoints_.load();
    stats.databasesCreated = databasesCreated_.load();
    stats.splits = splits_.load();
    stats.failovers = failovers_.load();
    stats.lastStatus = lastStatus_.load();
    std::lock_guard<std::mutex> lock(stateMutex_);
    stats.chunksDropped = chunksDropped_;
    stats.pointsDropped = pointsDropped_;
    stats.lastError = lastError_;
    stats.lastErrorTime = lastErrorTime_;
    stats.currentUrl = endpoints_[current_].label;
    return stats;
}

Poco::JSON::Object::Ptr InfluxWriter::health() const {
    const WriterStats stats = this->stats();
    Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
    auto byReason = [](const std::map<std::string, std::uint64_t>& counts) {
        Poco::JSON::Object::Ptr object = new Poco::JSON::Object;
        for (const auto& [reason, count] : counts)
            object->set(reason, static_cast<Poco::UInt64>(count));
        return object;
    };
    health->set("points_written", static_cast<Poco::UInt64>(stats.pointsWritten));
    health->set("chunks_written", static_cast<Poco::UInt64>(stats.chunksWritten));
    health->set("requests", static_cast<Poco::UInt64>(stats.requests));
    health->set("partial_writes", static_cast<Poco::UInt64>(stats.partialWrites));
    health->set("chunks_dropped", byReason(stats.chunksDropped));
    health->set("points_dropped", byReason(stats.pointsDropped));
    health->set("nonfinite_fields_dropped", static_cast<Poco::UInt64>(stats.nonFiniteFields));
    health->set("unencodable_points", static_cast<Poco::UInt64>(stats.unencodablePoints));
    health->set("databases_created", static_cast<Poco::UInt64>(stats.databasesCreated));
    health->set("splits", static_cast<Poco::UInt64>(stats.splits));
    health->set("failovers", static_cast<Poco::UInt64>(stats.failovers));
    health->set("concurrency", settings_.concurrency);
    health->set("connections_opened", static_cast<Poco::UInt64>(stats.connectionsOpened));
    health->set("last_status", stats.lastStatus);
    health->set("last_error", stats.lastError);
    health->set("last_error_time", stats.lastErrorTime);
    health->set("current_url", stats.currentUrl);
    return health;
}

} // namespace agent::influx
