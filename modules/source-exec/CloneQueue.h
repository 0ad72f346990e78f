// The plugins' clones, apart from everything else and bounded per git server: the registry sync
// only enqueues a checkout job (deduplicated by plugin key) and returns; the queue's own threads
// run at most `perServer` jobs at once per git server (scheme + host + port of the clone URL;
// every file:// URL is one server) and at most `threads` jobs in all. A git server that never
// answers therefore only delays the plugins whose repositories are on it. Each job starts after
// a random delay of 0..splay (without holding a thread), so a fleet does not storm the server.
// A plugin whose checkout failed is not taken again before its retry time (exponential backoff
// from `retryInitial` up to `retryMax`, with jitter).
//
// Every clone and fetch runs in the git helper process (GitRepository, GitTransferProcess), which
// is killed with its process group at its deadline or at stop(). Synchronous fetches
// (`/plugins/update`) go through update(), under the same per-server bound.
#pragma once

#include "GitRepository.h"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace agent {
class Backoff;
}

namespace agent::exec {

// What bounds clones apart: "scheme://host:port" of a clone URL (default ports filled in, host in
// lower case; scp-like user@host:path is ssh on port 22), "file://" for every local path.
std::string gitServerOf(const std::string& url);

struct CloneJob {
    std::string key;    // the plugin, "<ns>/<project>": one job per key at a time
    std::string url;    // what to clone
    std::string branch; // empty = "release"
    std::string target; // <pluginsdir>/<ns>/<project>
    std::chrono::milliseconds timeout{120000};
};

class CloneQueue {
public:
    using Clock = std::chrono::steady_clock;

    struct Options {
        unsigned perServer = 2; // max_parallel_clones
        unsigned threads = 0;   // 0: min(16, 4 x perServer)
        std::chrono::milliseconds splay{0};
        std::chrono::milliseconds retryInitial{10000}; // the first wait after a failed checkout
        std::chrono::milliseconds retryMax{600000};
    };
    // Called on a queue thread when a job has finished (not for jobs abandoned by stop()).
    using Done = std::function<void(const std::string& key, const GitResult& result)>;

    CloneQueue(std::string helperPath, Options options, Done done);
    ~CloneQueue(); // stop()
    CloneQueue(const CloneQueue&) = delete;
    CloneQueue& operator=(const CloneQueue&) = delete;

    enum class Enqueued {
        Queued,     // will run
        Already,    // that key is queued or running already
        BackingOff, // that key failed lately; not before retryAt(key)
        Stopping,
    };
    // Queues a checkout: GitRepository::ensure() (nothing when the target holds a checkout).
    Enqueued enqueue(CloneJob job);
    // A fetch and switch (GitRepository::update()) on this thread, once a slot of the URL's
    // server is free. Fails with "agent is stopping" after stop().
    GitResult update(const std::string& url, const std::string& branch, const std::string& target,
                     std::chrono::milliseconds timeout);

    // Drops the queued jobs, kills running helpers (their jobs are abandoned: no callback) and
    // joins the threads; returns within about 0.2 s plus the time a helper takes to die.
    void stop();
    // Waits until no job is queued or running; false at the timeout.
    bool waitIdle(std::chrono::milliseconds timeout);

    // When a key that failed may be tried again (steady clock), or nullopt.
    std::optional<Clock::time_point> retryAt(const std::string& key) const;
    void forgetFailures(const std::string& key); // e.g. after a manual update succeeded
    std::size_t queued() const;
    std::size_t active() const;
    unsigned peakActive(const std::string& server) const; // most jobs and updates at once
    std::size_t threads() const;

    GitRepository& repository() { return repository_; }

private:
    struct Job {
        CloneJob job;
        std::string server;
        Clock::time_point notBefore;
    };
    void work();
    void startThreadIfNeeded(); // needs mutex_
    void take(const std::string& server);    // needs mutex_
    void release(const std::string& server); // needs mutex_

    const Options options_;
    const unsigned maxThreads_;
    const Done done_;
    GitFetchLimiter transfers_; // no bound of its own: its stop flag kills the running helpers
    GitRepository repository_;

    mutable std::mutex mutex_; // guards everything below
    std::condition_variable changed_;
    bool stopping_ = false;
    std::vector<Job> queue_;
    std::set<std::string> running_; // keys
    std::map<std::string, unsigned> active_, peak_; // by server
    struct Failure {
        std::unique_ptr<Backoff> backoff;
        Clock::time_point retryAt;
    };
    std::map<std::string, Failure> failures_; // by key
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    std::mt19937_64 random_;
};

} // namespace agent::exec
