// The network side of a plugin checkout, as the git helper process (source-exec-git) runs it:
// a clone of one branch into a fresh directory, or an update that checks whether the branch
// moved and, when it did, makes a new checkout next to the current one. Only libgit2's public
// API; nothing here knows the layout of <pluginsdir> (GitRepository does).
//
// Why a separate process: libgit2 bounds nothing in 1.5 and 1.6, and from 1.7 on only each
// connect and each read or write (GIT_OPT_SET_SERVER_CONNECT_TIMEOUT / _SERVER_TIMEOUT), never
// a name lookup or a transfer that trickles. A helper that the agent kills at the deadline
// bounds all of them on every version, and leaves nothing half-done in the agent (see
// modules/source-exec/README.md, "Checkout"). Inside the helper the deadline still aborts libgit2's
// callbacks and sets its server timeouts where it has them, so most operations end on their
// own with a precise message before the kill.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

struct git_repository;

namespace agent::exec {

class LibGit2;

struct TransferResult {
    enum class Outcome { Changed, Unchanged, BranchNotFound, TimedOut, Failed };
    Outcome outcome = Outcome::Failed;
    std::string commit; // hex id of the checked-out (or current remote) commit
    std::string error;  // for BranchNotFound, TimedOut, Failed
};

class GitTransfer {
public:
    using Clock = std::chrono::steady_clock;
    // `stage` hears what the operation is doing ("connecting to ...", "receiving objects ..."), so
    // that whoever kills the helper can say where it hung.
    GitTransfer(Clock::time_point deadline, std::function<void(const std::string&)> stage);
    ~GitTransfer();
    GitTransfer(const GitTransfer&) = delete;
    GitTransfer& operator=(const GitTransfer&) = delete;

    // Makes `destination` (which must not exist) a checkout of `branch` of `url`, fetching that
    // branch only (whatever the server's HEAD names, even a branch that does not exist).
    TransferResult clone(const std::string& url, const std::string& branch, const std::string& destination);
    // Asks `url` for the head of `branch`; Unchanged when it is `current`'s HEAD. Otherwise makes
    // `destination` a local clone of `current` (objects hard-linked, no network), fetches the
    // branch into it from `url`, checks out the fetched commit and points origin at `url`.
    // `current` itself is only read: a process killed half-way leaves it as it was.
    TransferResult update(const std::string& url, const std::string& branch, const std::string& current,
                          const std::string& destination);

    // Whether this libgit2 bounds connects and reads itself (1.7 and later); for the log.
    static bool libraryHasServerTimeouts();

private:
    struct Callbacks;
    TransferResult failed(const Callbacks* callbacks, const std::string& step) const;
    TransferResult fetchAndCheckOut(git_repository* repo, const std::string& url, const std::string& branch,
                                    const std::string& destination);
    void applyServerTimeouts() const;

    const std::unique_ptr<LibGit2> library_; // libgit2 initialised while the transfer lives
    const Clock::time_point deadline_;
    const std::function<void(const std::string&)> stage_;
};

} // namespace agent::exec
