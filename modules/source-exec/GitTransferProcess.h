// The agent's side of the git helper: starts source-exec-git for one clone or update, reads its
// answer, and kills its whole process group at the deadline or when the agent stops. This is
// what bounds a clone or fetch in time on every libgit2 version, name lookups and trickling
// transfers included (GitTransfer.h says why a process).
//
// Touches nothing but the helper process it starts (every one is reaped before run() returns;
// waitpid on its own pid only). No shell: posix_spawn of the helper's path with an argv.
#pragma once

#include "GitTransfer.h"

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace agent::exec {

class GitTransferProcess {
public:
    explicit GitTransferProcess(std::string helperPath) : helperPath_(std::move(helperPath)) {}

    // Runs `source-exec-git <arguments...> <timeout in ms>`. TimedOut when the helper said so or
    // was killed at the deadline; Failed with "agent is stopping" when `stop` became true first.
    // Errors say where the helper was when it was stopped ("timed out after 2 s while connecting
    // to git://...").
    TransferResult run(const std::vector<std::string>& arguments, std::chrono::milliseconds timeout,
                       const std::atomic<bool>& stop) const;

    const std::string& helperPath() const { return helperPath_; }

private:
    std::string helperPath_;
};

// "2 s" or "1500 ms", as the timeouts are given.
std::string describeTimeout(std::chrono::milliseconds timeout);

} // namespace agent::exec
