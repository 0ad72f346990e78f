// A real InfluxDB 1.x server (influxd) for tests: its own config file, data in a TempDir, HTTP and
// RPC ports on loopback picked free at the first start, reporting and the _internal store off,
// its log in a file. stop() and start() again keep the ports and the data (outage tests).
#pragma once

#include "TestSupport.h"

#include <Poco/JSON/Object.h>

#include <cstdint>
#include <memory>
#include <string>

namespace agent::test {

class InfluxServer {
public:
    struct Options {
        std::size_t maxBodySize = 0; // [http] max-body-size in bytes; 0 = influxd's default (25 MB)
        // When set, authentication is on and this admin user is created at the first start;
        // query() and execute() then log in as it.
        std::string adminUser;
        std::string adminPassword;
        // When set, influxd runs on these CPUs only (taskset's list, e.g. "0" or "0-2"): a test that
        // compares writers keeps their CPU apart from the database's, as on separate hosts.
        std::string cpus;
    };

    // The influxd binary: $INFLUXD when set, else /usr/bin/influxd.
    static std::string binary();
    static bool available();

    // Starts the server and waits until GET /ping answers 204.
    InfluxServer();
    explicit InfluxServer(Options options);
    ~InfluxServer(); // stops it
    InfluxServer(const InfluxServer&) = delete;
    InfluxServer& operator=(const InfluxServer&) = delete;

    // Starts again on the same ports and data directory; waits for /ping (60 s at most).
    void start();
    // SIGTERM, then SIGKILL when it has not exited within 15 s.
    void stop();
    bool running();
    // Sends `signal` to influxd (SIGSTOP / SIGCONT: a database that stalls without closing).
    void signal(int signal) const;

    std::uint16_t httpPort() const { return httpPort_; }
    std::string url() const; // http://127.0.0.1:<httpPort>
    // influxd's output of every start so far.
    std::string log() const;

    // POST /query?db=<db>&epoch=s with the statement (as the admin user, if there is one);
    // returns the answer's JSON text.
    // Throws when the server does not answer 200.
    std::string query(const std::string& database, const std::string& influxql) const;
    // The parsed answer; throws when a statement reports an error.
    Poco::JSON::Object::Ptr queryObject(const std::string& database, const std::string& influxql) const;
    // The rows of the first series of the first statement: values[row][column]; empty when none.
    Poco::JSON::Array::Ptr rows(const std::string& database, const std::string& influxql) const;
    // The first value of the first row as an integer (SELECT count(...)); 0 when there is none.
    std::int64_t count(const std::string& database, const std::string& influxql) const;
    // Runs a statement that returns no rows (CREATE DATABASE ...); throws on an error.
    void execute(const std::string& influxql) const;

private:
    void pickPorts();
    void writeConfig() const;
    // Starts influxd once; false when it exited early because a port was taken.
    bool launch();
    bool pingAnswers() const;
    std::string post(const std::string& form, bool authenticate) const;

    Options options_;
    TempDir dir_;
    std::uint16_t httpPort_ = 0;
    std::uint16_t rpcPort_ = 0;
    int starts_ = 0;
    std::unique_ptr<BackgroundProcess> process_;
};

using InfluxServerPtr = std::unique_ptr<InfluxServer>;

} // namespace agent::test
