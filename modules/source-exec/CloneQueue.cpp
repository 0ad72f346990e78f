// The checkout queue (see CloneQueue.h).
#include "CloneQueue.h"

#include <agent/Backoff.h>

#include <algorithm>
#include <cctype>

namespace agent::exec {

std::string gitServerOf(const std::string& url) {
    const std::size_t schemeEnd = url.find("://");
    std::string scheme, authority;
    if (schemeEnd == std::string::npos) {
        // scp-like [user@]host:path
        scheme = "ssh";
        authority = url.substr(0, url.find(':'));
        if (const std::size_t at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
        authority += ":22";
    } else {
        scheme = url.substr(0, schemeEnd);
        std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
        if (scheme == "file") return "file://";
        authority = url.substr(schemeEnd + 3);
        authority = authority.substr(0, authority.find('/'));
        if (const std::size_t at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
        const std::size_t bracket = authority.rfind(']');
        const std::size_t colon = authority.rfind(':');
        const bool hasPort = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
        if (!hasPort) {
            const char* port = scheme == "https" ? "443" : scheme == "http" ? "80" : scheme == "ssh" ? "22"
                               : scheme == "git" ? "9418" : "0";
            authority += std::string(":") + port;
        }
    }
    std::transform(authority.begin(), authority.end(), authority.begin(), [](unsigned char c) { return std::tolower(c); });
    return scheme + "://" + authority;
}

namespace {

// The transfers' own limiter only carries the stop flag: the queue does the bounding.
constexpr unsigned kUnbounded = 1u << 20;

GitResult stoppingResult(const std::string& url) {
    GitResult result;
    result.error = "git of " + url + ": agent is stopping";
    return result;
}

} // namespace

CloneQueue::CloneQueue(std::string helperPath, Options options, Done done)
    : options_(options),
      maxThreads_(options.threads != 0 ? options.threads : std::min(16u, 4u * std::max(1u, options.perServer))),
      done_(std::move(done)), transfers_(kUnbounded, std::chrono::milliseconds(0)),
      repository_(transfers_, std::move(helperPath)), random_(std::random_device{}()) {}

CloneQueue::~CloneQueue() { stop(); }

void CloneQueue::take(const std::string& server) {
    unsigned& active = active_[server];
    ++active;
    peak_[server] = std::max(peak_[server], active);
}

void CloneQueue::release(const std::string& server) {
    if (--active_[server] == 0) active_.erase(server);
    changed_.notify_all();
}

void CloneQueue::startThreadIfNeeded() {
    if (idle_ > 0 || threads_.size() >= maxThreads_) return;
    ++idle_;
    threads_.emplace_back([this] { work(); });
}

CloneQueue::Enqueued CloneQueue::enqueue(CloneJob job) {
    std::lock_guard lock(mutex_);
    if (stopping_) return Enqueued::Stopping;
    if (running_.count(job.key) != 0 ||
        std::any_of(queue_.begin(), queue_.end(), [&](const Job& queued) { return queued.job.key == job.key; }))
        return Enqueued::Already;
    if (auto failed = failures_.find(job.key); failed != failures_.end() && Clock::now() < failed->second.retryAt)
        return Enqueued::BackingOff;
    Job entry;
    entry.server = gitServerOf(job.url);
    entry.notBefore = Clock::now();
    if (options_.splay.count() > 0)
        entry.notBefore += std::chrono::milliseconds(random_() % static_cast<std::uint64_t>(options_.splay.count() + 1));
    entry.job = std::move(job);
    queue_.push_back(std::move(entry));
    startThreadIfNeeded();
    changed_.notify_all();
    return Enqueued::Queued;
}

void CloneQueue::work() {
    std::unique_lock lock(mutex_);
    for (;;) {
        if (stopping_) return;
        // The first job that is due and whose server has a free slot.
        const Clock::time_point now = Clock::now();
        std::optional<Clock::time_point> nextDue;
        auto pick = queue_.end();
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
            if (active_[it->server] >= options_.perServer) continue;
            if (it->notBefore > now) {
                nextDue = nextDue ? std::min(*nextDue, it->notBefore) : it->notBefore;
                continue;
            }
            pick = it;
            break;
        }
        if (pick == queue_.end()) {
            if (nextDue)
                changed_.wait_until(lock, *nextDue);
            else
                changed_.wait(lock);
            continue;
        }
        Job job = std::move(*pick);
        queue_.erase(pick);
        running_.insert(job.job.key);
        take(job.server);
        --idle_;
        if (!queue_.empty()) startThreadIfNeeded(); // another job may be runnable meanwhile
        lock.unlock();

        const GitResult result =
            repository_.ensure(job.job.url, job.job.branch, job.job.target, job.job.timeout);

        lock.lock();
        running_.erase(job.job.key);
        release(job.server);
        if (stopping_) return; // abandoned: nobody waits for its answer any more
        if (result.ok) {
            failures_.erase(job.job.key);
        } else {
            Failure& failure = failures_[job.job.key];
            if (!failure.backoff) {
                Backoff::Policy policy;
                policy.initialSeconds = static_cast<double>(options_.retryInitial.count()) / 1000.0;
                policy.maxSeconds = static_cast<double>(options_.retryMax.count()) / 1000.0;
                policy.factor = 2;
                failure.backoff = std::make_unique<Backoff>(policy);
            }
            failure.retryAt = Clock::now() + std::chrono::microseconds(failure.backoff->next().totalMicroseconds());
        }
        lock.unlock();
        if (done_) done_(job.job.key, result);
        lock.lock();
        ++idle_;
        changed_.notify_all(); // waitIdle() once the callback is through
    }
}

GitResult CloneQueue::update(const std::string& url, const std::string& branch, const std::string& target,
                             std::chrono::milliseconds timeout) {
    const std::string server = gitServerOf(url);
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || active_[server] < options_.perServer; });
        if (stopping_) return stoppingResult(url);
        take(server);
    }
    GitResult result = repository_.update(url, branch, target, timeout);
    std::lock_guard lock(mutex_);
    release(server);
    return result;
}

void CloneQueue::stop() {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        queue_.clear();
        threads.swap(threads_);
    }
    transfers_.stop(); // running helpers are killed within the helper's poll slice (100 ms)
    changed_.notify_all();
    for (std::thread& thread : threads)
        thread.join();
}

bool CloneQueue::waitIdle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    // A job's callback runs after it left running_: idle_ counts it back only once it is through.
    return changed_.wait_for(lock, timeout, [this] {
        return stopping_ || (queue_.empty() && running_.empty() && idle_ == threads_.size());
    });
}

std::optional<CloneQueue::Clock::time_point> CloneQueue::retryAt(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = failures_.find(key);
    if (it == failures_.end()) return std::nullopt;
    return it->second.retryAt;
}

void CloneQueue::forgetFailures(const std::string& key) {
    std::lock_guard lock(mutex_);
    failures_.erase(key);
}

std::size_t CloneQueue::queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::size_t CloneQueue::active() const {
    std::lock_guard lock(mutex_);
    return running_.size();
}

unsigned CloneQueue::peakActive(const std::string& server) const {
    std::lock_guard lock(mutex_);
    auto it = peak_.find(server);
    return it == peak_.end() ? 0 : it->second;
}

std::size_t CloneQueue::threads() const {
    std::lock_guard lock(mutex_);
    return threads_.size();
}

} // namespace agent::exec
