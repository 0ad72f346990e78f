// What the agent's side (GitRepository) and the git helper (GitTransfer) both need from libgit2:
// its initialisation held for a scope, owning pointers for its objects, its last error as text
// and a commit id as hex.
#pragma once

#include <git2.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace agent::exec {

inline std::string lastGitError() {
    const git_error* e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

// libgit2 initialised while this lives. The count is libgit2's own: the first init sets up its
// global state (TLS, SSH) and the last shutdown tears it down, which costs milliseconds, so
// whoever calls libgit2 often holds one for as long as it lives.
class LibGit2 {
public:
    LibGit2() {
        if (git_libgit2_init() < 0) throw std::runtime_error("libgit2 init failed: " + lastGitError());
    }
    ~LibGit2() { git_libgit2_shutdown(); }
    LibGit2(const LibGit2&) = delete;
    LibGit2& operator=(const LibGit2&) = delete;
};

template <typename T, void (*Free)(T*)> struct GitFree {
    void operator()(T* p) const { Free(p); }
};
using RepositoryPtr = std::unique_ptr<git_repository, GitFree<git_repository, git_repository_free>>;
using RemotePtr = std::unique_ptr<git_remote, GitFree<git_remote, git_remote_free>>;
using ConfigPtr = std::unique_ptr<git_config, GitFree<git_config, git_config_free>>;
using ObjectPtr = std::unique_ptr<git_object, GitFree<git_object, git_object_free>>;

inline std::string oidHex(const git_oid& oid) {
    // Large enough for a SHA-256 id too, without naming a version's size macro.
    char text[80];
    git_oid_tostr(text, sizeof text, &oid);
    return text;
}

inline std::optional<std::string> headCommit(git_repository* repo) {
    git_oid oid;
    if (git_reference_name_to_id(&oid, repo, "HEAD") != 0) return std::nullopt;
    return oidHex(oid);
}

} // namespace agent::exec
