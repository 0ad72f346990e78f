// Keeps the registry's answer current for the whole agent: polls every 10 minutes (plus a random
// splay, so a fleet does not poll at once) and on demand, reports the host every 10 minutes,
// caches the last good answer in the state dir and starts from that cache, so a restart with the
// registry down keeps every plugin running. The host's namespaces follow the answer.
#pragma once

#include "RegistryClient.h"

#include <agent/Context.h>

#include <Poco/JSON/Object.h>
#include <Poco/Logger.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace agent {

// The host identity shared by every module's Context; namespaces change with the registry.
class HostIdentityStore {
public:
    explicit HostIdentityStore(HostIdentity identity) : identity_(std::move(identity)) {}
    HostIdentity get() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return identity_;
    }
    void setNamespaces(std::vector<std::string> namespaces) {
        std::lock_guard<std::mutex> lock(mutex_);
        identity_.namespaces = std::move(namespaces);
    }

private:
    mutable std::mutex mutex_; // guards identity_
    HostIdentity identity_;
};

class RegistryPoller : public Registry {
public:
    struct Options {
        std::string address;   // "" = standalone: no polling, no entries
        std::string cacheFile; // <statedir>/registry.json
        std::string version;   // reported
        std::chrono::seconds interval{600};
        std::chrono::seconds splay{60};
        std::chrono::seconds timeout{10};
    };

    RegistryPoller(Options options, HostIdentityStore& identity, Poco::Logger& logger);
    ~RegistryPoller() override;

    // Loads the cache (namespaces and entries are usable at once), then polls in the background.
    void start();
    void stop();

    std::vector<Entry> entries(const std::string& ns) const override;
    std::uint64_t generation() const override;
    bool pollNow(std::string& error) override;

    Poco::JSON::Object::Ptr health() const;

private:
    void loop();
    // One poll; applies and caches a good answer. Returns false with the reason on failure.
    bool pollOnce(std::string& error);
    void apply(RegistryAnswer answer, const char* source);

    const Options options_;
    HostIdentityStore& identity_;
    Poco::Logger& logger_;
    const RegistryClient client_;

    std::mutex applyMutex_; // serialises apply(): namespaces, answer and generation change together
    mutable std::mutex mutex_; // guards the fields down to lastError_
    RegistryAnswer answer_;
    std::uint64_t generation_ = 0;
    std::uint64_t polls_ = 0;
    std::uint64_t failures_ = 0;
    std::int64_t lastSuccess_ = 0;
    std::string lastError_;

    std::mutex pollMutex_; // one poll at a time (the timer's and /update's)
    std::mutex wakeMutex_; // guards stopping_
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace agent
