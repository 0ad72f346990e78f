// The git side of the plugin manager (docs/ARCHITECTURE.md §10.1-§10.3): which registry addresses
// name a safe <ns>/<project> directory, and cloning or updating a plugin's checkout under
// <pluginsdir>/<ns>/<project> with libgit2, bounded in time and in concurrency.
//
// Layout, so that a running plugin never sees a half-written tree:
//   <pluginsdir>/<ns>/<project>                  symlink to the current version (relative)
//   <pluginsdir>/<ns>/.<project>.<commit12>[-N]  one checkout per version
//   <pluginsdir>/<ns>/.<project>.tmp-XXXXXXXX    a clone in progress (never the link's target)
// A switch writes a new symlink under a temporary name and rename()s it over the old one. An
// update removes every version but the new one and the one it replaced (which may be running).
//
// Time bounds: every clone and fetch runs in the git helper process (source-exec-git, see
// GitTransfer.h), which is killed with its process group at the deadline or when the limiter
// stops; so name resolution, connects, silent servers and slow transfers are all bounded, over
// every transport and on every libgit2 version. Waiting for a limiter slot and the splay are not
// counted. libgit2 runs in the agent itself only to read which commit a checkout holds.
#pragma once

#include "GitTransferProcess.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace agent::exec {

class LibGit2;

inline constexpr const char* kDefaultPluginBranch = "release";

// A namespace or project name usable as one path component: [0-9A-Za-z._-]+, at most 128
// characters, not "." or "..", and not starting with "." (dot names are this layout's version
// directories).
bool isSafeComponent(std::string_view name);

// The "group/project" path of a registry `git` address: git@host:group/project.git,
// ssh://[user@]host[:port]/group/project.git, https://host/group/project.git, git://...;
// for file:///any/path/group/project.git the last two components. Subgroups of a network
// address are kept (a/b/project). Every component must pass isSafeComponent; else nullopt and
// `error` says why.
std::optional<std::string> projectPath(const std::string& registryGit, std::string& error);
// The last component of a projectPath(): the plugin's project name.
std::string projectName(const std::string& projectPath);
// The URL to clone: `gitTemplate` ([agent] git) with its first %s replaced by projectPath(), or
// `registryGit` itself when the template is empty. Empty when the address is refused.
std::string cloneUrl(const std::string& gitTemplate, const std::string& registryGit);

struct GitResult {
    bool ok = false;
    std::string commit;   // full hex id of the checked-out commit when ok
    std::string error;    // what failed, when !ok
    bool changed = false; // the checkout was created or switched to a new commit
};

// Bounds how many clones and fetches run at once (a counting semaphore), and spreads their
// start over a random delay of 0..splay so a fleet does not storm the git server.
class GitFetchLimiter {
public:
    explicit GitFetchLimiter(unsigned maxConcurrent = 2,
                             std::chrono::milliseconds splay = std::chrono::milliseconds(0));
    GitFetchLimiter(const GitFetchLimiter&) = delete;
    GitFetchLimiter& operator=(const GitFetchLimiter&) = delete;

    // A held slot; released at destruction.
    class Slot {
    public:
        explicit Slot(GitFetchLimiter* limiter) : limiter_(limiter) {}
        Slot(Slot&& other) noexcept : limiter_(other.limiter_) { other.limiter_ = nullptr; }
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        Slot& operator=(Slot&&) = delete;
        ~Slot();

    private:
        GitFetchLimiter* limiter_;
    };

    // Sleeps the random splay, then waits for a free slot. nullopt once stop() was called.
    std::optional<Slot> acquire();
    // Wakes every waiter (they get nullopt) and makes running operations abort; for shutdown.
    void stop();
    bool stopping() const { return stopping_.load(); }
    const std::atomic<bool>& stopFlag() const { return stopping_; }

    unsigned maxConcurrent() const { return maxConcurrent_; }
    unsigned active() const;
    unsigned peakActive() const; // the most slots ever held at once

private:
    void release();

    const unsigned maxConcurrent_;
    const std::chrono::milliseconds splay_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_; // guards active_, peak_, random_
    std::condition_variable changed_;
    unsigned active_ = 0;
    unsigned peak_ = 0;
    std::mt19937_64 random_;
};
using GitFetchLimiterPtr = std::unique_ptr<GitFetchLimiter>;

// Clones and updates plugin checkouts (`target` = <pluginsdir>/<ns>/<project>). Thread-safe:
// operations on one target are serialised, operations on different targets run in parallel up
// to the limiter's bound.
class GitRepository {
public:
    // `helperPath`: the source-exec-git executable (installed next to the module).
    GitRepository(GitFetchLimiter& limiter, std::string helperPath);
    ~GitRepository();
    GitRepository(const GitRepository&) = delete;
    GitRepository& operator=(const GitRepository&) = delete;

    // Makes sure `target` holds a checkout: does nothing when it does (a cached plugin is never
    // updated by polling), else clones `branch` (empty = "release") and switches it into place.
    GitResult ensure(const std::string& url, const std::string& branch, const std::string& target,
                     std::chrono::milliseconds timeout);
    // Fetches `branch` and, when its head moved, checks it out into a fresh directory and
    // switches to it; changed=false when it had not moved. Clones when there is no checkout.
    GitResult update(const std::string& url, const std::string& branch, const std::string& target,
                     std::chrono::milliseconds timeout);

    // The commit `target` has checked out, or nullopt when it holds no usable checkout.
    static std::optional<std::string> checkedOutCommit(const std::string& target);

private:
    std::shared_ptr<std::mutex> targetMutex(const std::string& target);
    GitResult clone(const std::string& url, const std::string& branch, const std::string& target,
                    std::chrono::milliseconds timeout);

    // libgit2 stays initialised while this lives: checkedOutCommit() runs on every registry sync
    // for every plugin, and a full init and shutdown each time costs milliseconds.
    const std::unique_ptr<LibGit2> library_;
    GitFetchLimiter& limiter_;
    const GitTransferProcess transfer_;
    std::mutex targetsMutex_; // guards targets_
    std::map<std::string, std::shared_ptr<std::mutex>> targets_;
};
using GitRepositoryPtr = std::unique_ptr<GitRepository>;

} // namespace agent::exec
