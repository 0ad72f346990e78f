#include "RegistryPoller.h"

#include <Poco/File.h>
#include <Poco/Path.h>

#include <ctime>
#include <random>

namespace agent {

RegistryPoller::RegistryPoller(Options options, HostIdentityStore& identity, Poco::Logger& logger)
    : options_(std::move(options)), identity_(identity), logger_(logger), client_(options_.address, options_.timeout) {}

RegistryPoller::~RegistryPoller() { stop(); }

void RegistryPoller::start() {
    if (options_.address.empty()) return;
    std::string error;
    if (std::optional<RegistryAnswer> cached = RegistryClient::load(options_.cacheFile, error)) {
        apply(std::move(*cached), "cache");
    } else if (!error.empty()) {
        logger_.warning("registry cache unusable: %s", error);
    }
    thread_ = std::thread([this] { loop(); });
}

void RegistryPoller::stop() {
    {
        std::lock_guard<std::mutex> lock(wakeMutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void RegistryPoller::loop() {
    std::mt19937_64 random(std::random_device{}());
    std::uniform_int_distribution<long> splay(0, std::max<long>(0, static_cast<long>(options_.splay.count()) * 1000));
    bool first = true;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(wakeMutex_);
            // Every poll waits a random splay, the first one too: a fleet that starts or restarts
            // at once (a package upgrade) must not poll the registry in the same second; the
            // cached answer keeps every module going meanwhile. A file:// registry costs nothing
            // to read, so its first poll goes at once.
            std::chrono::milliseconds wait(splay(random));
            if (first && options_.address.rfind("file://", 0) == 0) wait = std::chrono::milliseconds(0);
            else if (first) logger_.information("registry: first poll in %.1f s (a random splay of up to %d s)",
                                                static_cast<double>(wait.count()) / 1000.0,
                                                static_cast<int>(options_.splay.count()));
            else wait += std::chrono::duration_cast<std::chrono::milliseconds>(options_.interval);
            if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
        }
        first = false;
        std::string error;
        pollOnce(error);
        try {
            client_.report(identity_.get(), options_.version);
        } catch (const RegistryError& e) {
            logger_.warning("registry report failed: %s", std::string(e.what()));
        }
    }
}

bool RegistryPoller::pollNow(std::string& error) {
    if (options_.address.empty()) {
        error = "no registry configured ([agent] registryaddr is empty)";
        return false;
    }
    return pollOnce(error);
}

bool RegistryPoller::pollOnce(std::string& error) {
    std::lock_guard<std::mutex> polling(pollMutex_);
    std::vector<std::string> skipped;
    try {
        RegistryAnswer answer = client_.fetch(identity_.get(), skipped);
        for (const std::string& note : skipped) logger_.warning("registry: %s; skipped", note);
        try {
            Poco::File(Poco::Path(options_.cacheFile).parent()).createDirectories();
            RegistryClient::save(answer, options_.cacheFile);
        } catch (const std::exception& e) {
            logger_.error("registry: cannot cache the answer: %s", std::string(e.what()));
        }
        apply(std::move(answer), "registry");
        std::lock_guard<std::mutex> lock(mutex_);
        ++polls_;
        lastSuccess_ = static_cast<std::int64_t>(std::time(nullptr));
        lastError_.clear();
        return true;
    } catch (const RegistryError& e) {
        error = e.what();
        logger_.warning("registry poll failed (%s); keeping the last good answer", error);
        std::lock_guard<std::mutex> lock(mutex_);
        ++polls_;
        ++failures_;
        lastError_ = error;
        return false;
    }
}

void RegistryPoller::apply(RegistryAnswer answer, const char* source) {
    std::vector<std::string> namespaces;
    for (const auto& [ns, id] : answer.namespaces) namespaces.push_back(ns);
    std::lock_guard<std::mutex> serial(applyMutex_); // the poll and /update may apply at once
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (answer == answer_ && generation_ > 0) return;
    }
    std::string list;
    for (const std::string& ns : namespaces) list += (list.empty() ? "" : ", ") + ns;
    // The namespaces first, the generation last: a module that sees the new generation must find
    // the new namespaces and entries with it (source-host records the generation it applied and
    // would otherwise keep the intervals of the old namespaces for good).
    identity_.setNamespaces(std::move(namespaces));
    {
        std::lock_guard<std::mutex> lock(mutex_);
        answer_ = std::move(answer);
        ++generation_;
    }
    logger_.information("registry (%s): namespaces %s", std::string(source), list.empty() ? std::string("(none)") : list);
}

std::vector<Registry::Entry> RegistryPoller::entries(const std::string& ns) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = answer_.resources.find(ns);
    return it == answer_.resources.end() ? std::vector<Entry>{} : it->second;
}

std::uint64_t RegistryPoller::generation() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return generation_;
}

Poco::JSON::Object::Ptr RegistryPoller::health() const {
    Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
    std::lock_guard<std::mutex> lock(mutex_);
    health->set("address", options_.address);
    health->set("polls", static_cast<Poco::UInt64>(polls_));
    health->set("failures", static_cast<Poco::UInt64>(failures_));
    health->set("last_success", lastSuccess_);
    health->set("namespaces", static_cast<Poco::UInt64>(answer_.namespaces.size()));
    if (!lastError_.empty()) health->set("last_error", lastError_);
    return health;
}

} // namespace agent
