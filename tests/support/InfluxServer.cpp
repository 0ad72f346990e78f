#include "InfluxServer.h"

#include <Poco/Environment.h>
#include <Poco/File.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPBasicCredentials.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/NullStream.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <csignal>
#include <sstream>
#include <stdexcept>

namespace agent::test {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(60);
constexpr auto kStopTimeout = std::chrono::seconds(15);
constexpr int kPortAttempts = 5;

std::string formValue(const std::string& value) {
    std::string encoded;
    Poco::URI::encode(value, "!#$&'()*+,/:;=?@[]\"<>\\^`{|} %", encoded);
    return encoded;
}

std::string tail(const std::string& text, std::size_t bytes = 4000) {
    return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

} // namespace

std::string InfluxServer::binary() {
    return Poco::Environment::has("INFLUXD") ? Poco::Environment::get("INFLUXD") : std::string("/usr/bin/influxd");
}

bool InfluxServer::available() {
    const Poco::File file(binary());
    return file.exists() && file.canExecute();
}

InfluxServer::InfluxServer() : InfluxServer(Options{}) {}

InfluxServer::InfluxServer(Options options) : options_(options) {
    if (!available()) throw std::runtime_error("influxd not found at " + binary() + " (set $INFLUXD)");
    // Free ports found now may be taken by someone else before influxd binds them: try again.
    for (int attempt = 1;; ++attempt) {
        pickPorts();
        writeConfig();
        if (launch()) break;
        if (attempt == kPortAttempts)
            throw std::runtime_error("influxd found its ports taken " + std::to_string(attempt) + " times:\n" +
                                     tail(log()));
    }
    // With authentication on and no user yet, influxd takes exactly this statement unauthenticated.
    if (!options_.adminUser.empty())
        post("q=" + formValue("CREATE USER \"" + options_.adminUser + "\" WITH PASSWORD '" + options_.adminPassword +
                              "' WITH ALL PRIVILEGES"),
             false);
}

InfluxServer::~InfluxServer() {
    try {
        stop();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "stopping influxd: %s\n", error.what());
    }
}

void InfluxServer::pickPorts() {
    // Both sockets are open at once, so the two ports differ.
    Poco::Net::ServerSocket http(Poco::Net::SocketAddress("127.0.0.1", 0));
    Poco::Net::ServerSocket rpc(Poco::Net::SocketAddress("127.0.0.1", 0));
    httpPort_ = http.address().port();
    rpcPort_ = rpc.address().port();
    http.close();
    rpc.close();
}

void InfluxServer::writeConfig() const {
    std::ostringstream config;
    config << "reporting-disabled = true\n"
           << "bind-address = \"127.0.0.1:" << rpcPort_ << "\"\n"
           << "[meta]\n"
           << "  dir = \"" << dir_ / "meta"
           << "\"\n"
           << "  logging-enabled = false\n"
           << "[data]\n"
           << "  dir = \"" << dir_ / "data"
           << "\"\n"
           << "  wal-dir = \"" << dir_ / "wal"
           << "\"\n"
           << "  query-log-enabled = false\n"
           << "[monitor]\n"
           << "  store-enabled = false\n"
           << "[subscriber]\n"
           << "  enabled = false\n"
           << "[retention]\n"
           << "  enabled = false\n"
           << "[shard-precreation]\n"
           << "  enabled = false\n"
           << "[continuous_queries]\n"
           << "  enabled = false\n"
           << "[http]\n"
           << "  bind-address = \"127.0.0.1:" << httpPort_ << "\"\n"
           << "  log-enabled = true\n"
           << "  pprof-enabled = false\n"
           << "  auth-enabled = " << (options_.adminUser.empty() ? "false" : "true") << "\n";
    if (options_.maxBodySize > 0) config << "  max-body-size = " << options_.maxBodySize << "\n";
    config << "[logging]\n"
           << "  suppress-logo = true\n";
    writeFile(dir_ / "influxdb.conf", config.str());
}

bool InfluxServer::launch() {
    ++starts_;
    const std::string logDir = dir_ / ("log-" + std::to_string(starts_));
    Poco::File(logDir).createDirectories();
    std::vector<std::string> argv{binary(), "-config", dir_ / "influxdb.conf"};
    if (!options_.cpus.empty()) argv.insert(argv.begin(), {"/usr/bin/taskset", "-c", options_.cpus});
    process_ = std::make_unique<BackgroundProcess>(argv, logDir, dir_.path());
    const bool up = eventually([this] { return !process_->running() || pingAnswers(); }, kStartTimeout);
    if (up && process_->running()) return true;
    const std::string output = process_->err() + process_->out();
    if (!up) {
        stop();
        throw std::runtime_error("influxd did not answer /ping within 60 s:\n" + tail(output));
    }
    process_.reset();
    if (contains(output, "address already in use")) return false;
    throw std::runtime_error("influxd exited at start:\n" + tail(output));
}

void InfluxServer::start() {
    if (running()) return;
    if (!launch()) throw std::runtime_error("influxd cannot bind its ports again:\n" + tail(log()));
}

void InfluxServer::stop() {
    if (!process_) return;
    if (process_->running()) {
        process_->signal(SIGTERM);
        if (process_->wait(kStopTimeout) < 0) {
            process_->signal(SIGKILL);
            process_->wait(kStopTimeout);
        }
    }
    process_.reset();
}

bool InfluxServer::running() {
    return process_ && process_->running();
}

std::string InfluxServer::url() const {
    return "http://127.0.0.1:" + std::to_string(httpPort_);
}

std::string InfluxServer::log() const {
    std::string text;
    for (int start = 1; start <= starts_; ++start) {
        const std::string logDir = dir_ / ("log-" + std::to_string(start));
        text += readFile(logDir + "/process.err") + readFile(logDir + "/process.out");
    }
    return text;
}

bool InfluxServer::pingAnswers() const {
    try {
        Poco::Net::HTTPClientSession session("127.0.0.1", httpPort_);
        session.setTimeout(Poco::Timespan(1, 0));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/ping", Poco::Net::HTTPMessage::HTTP_1_1);
        session.sendRequest(request);
        Poco::Net::HTTPResponse response;
        std::istream& body = session.receiveResponse(response);
        Poco::NullOutputStream discard;
        Poco::StreamCopier::copyStream(body, discard);
        return response.getStatus() == Poco::Net::HTTPResponse::HTTP_NO_CONTENT;
    } catch (const Poco::Exception&) {
        return false; // not listening yet: the caller polls
    }
}

std::string InfluxServer::query(const std::string& database, const std::string& influxql) const {
    std::string form = "q=" + formValue(influxql) + "&epoch=s";
    if (!database.empty()) form += "&db=" + formValue(database);
    return post(form, true);
}

std::string InfluxServer::post(const std::string& form, bool authenticate) const {
    Poco::Net::HTTPClientSession session("127.0.0.1", httpPort_);
    session.setTimeout(Poco::Timespan(30, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, "/query", Poco::Net::HTTPMessage::HTTP_1_1);
    if (authenticate && !options_.adminUser.empty())
        Poco::Net::HTTPBasicCredentials(options_.adminUser, options_.adminPassword).authenticate(request);
    request.setContentType("application/x-www-form-urlencoded");
    request.setContentLength(static_cast<std::streamsize>(form.size()));
    session.sendRequest(request) << form;
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    std::string text;
    Poco::StreamCopier::copyToString(body, text);
    if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK)
        throw std::runtime_error("influxd answered " + std::to_string(response.getStatus()) + " to " + form + ": " +
                                 text);
    return text;
}

Poco::JSON::Object::Ptr InfluxServer::queryObject(const std::string& database, const std::string& influxql) const {
    Poco::JSON::Parser parser;
    const std::string text = query(database, influxql);
    const auto answer = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    const Poco::JSON::Array::Ptr results = answer->getArray("results");
    if (!results) throw std::runtime_error("no results in " + text);
    for (std::size_t i = 0; i < results->size(); ++i) {
        const Poco::JSON::Object::Ptr result = results->getObject(static_cast<unsigned>(i));
        if (result && result->has("error"))
            throw std::runtime_error("\"" + influxql + "\": " + result->getValue<std::string>("error"));
    }
    return answer;
}

Poco::JSON::Array::Ptr InfluxServer::rows(const std::string& database, const std::string& influxql) const {
    const Poco::JSON::Object::Ptr answer = queryObject(database, influxql);
    const Poco::JSON::Object::Ptr result = answer->getArray("results")->getObject(0);
    Poco::JSON::Array::Ptr none = new Poco::JSON::Array;
    if (!result || !result->has("series")) return none;
    const Poco::JSON::Array::Ptr series = result->getArray("series");
    if (!series || series->size() == 0) return none;
    const Poco::JSON::Array::Ptr values = series->getObject(0)->getArray("values");
    return values ? values : none;
}

std::int64_t InfluxServer::count(const std::string& database, const std::string& influxql) const {
    const Poco::JSON::Array::Ptr values = rows(database, influxql);
    if (values->size() == 0) return 0;
    return values->getArray(0)->get(1).convert<std::int64_t>();
}

void InfluxServer::execute(const std::string& influxql) const {
    queryObject("", influxql);
}

} // namespace agent::test

namespace agent::test {

void InfluxServer::signal(int signal) const {
    if (process_) process_->signal(signal);
}

} // namespace agent::test
