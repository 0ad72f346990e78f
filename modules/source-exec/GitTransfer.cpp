// Clone and update with libgit2's public API (see GitTransfer.h). Runs in the git helper
// process, one operation per process, so process-wide libgit2 options are ours to set.
#include "GitTransfer.h"
#include "LibGit2.h"

#include <git2.h>
#include <libssh2.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unistd.h>

namespace agent::exec {

namespace {

// Remotes are made without url.<base>.insteadOf rewriting: the agent passes the URL it means,
// and libgit2 1.5's insteadOf lookup leaks pcre2 match data on every config entry it does not
// match (fixed upstream by libgit2 PR #6382, not in Debian's 1.5.1).
int createRemote(git_remote** out, git_repository* repo, const char* name, const char* url) {
    git_remote_create_options options = GIT_REMOTE_CREATE_OPTIONS_INIT;
    options.repository = repo;
    options.name = name;
    options.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
    return git_remote_create_with_opts(out, url, &options);
}

// The port of an ssh:// URL (22 for scp-like addresses and when none is given).
int sshPort(const std::string& url) {
    if (!url.starts_with("ssh://")) return 22;
    const std::size_t hostStart = url.find('@', 6) == std::string::npos ? 6 : url.find('@', 6) + 1;
    const std::size_t pathStart = url.find('/', hostStart);
    const std::string authority = url.substr(hostStart, pathStart - hostStart);
    const std::size_t colon = authority.rfind(':');
    if (colon == std::string::npos || authority.find(']', colon) != std::string::npos) return 22;
    try {
        return std::stoi(authority.substr(colon + 1));
    } catch (const std::exception&) {
        return 22;
    }
}

int knownHostKeyType(git_cert_ssh_raw_type_t type) {
    switch (type) {
    case GIT_CERT_SSH_RAW_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case GIT_CERT_SSH_RAW_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
        return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

// Checks an SSH server's host key against $HOME/.ssh/known_hosts with libssh2 (the library
// libgit2's SSH transport uses): libgit2 1.5 and 1.6 accept any host key when asked to decide
// themselves, 1.7+ check this file. Doing it here makes every version refuse an unknown or
// changed key, which would otherwise let whoever sits on the path hand plugin code to the host.
// Returns why the key is refused, or empty.
std::string checkKnownHost(const std::string& host, int port, const git_cert_hostkey& key) {
    if (!(key.type & GIT_CERT_SSH_RAW) || key.hostkey == nullptr)
        return "the host key of " + host + " cannot be checked (libssh2 gave no raw key)";
    const char* home = std::getenv("HOME");
    const std::string path = std::string(home ? home : "/") + "/.ssh/known_hosts";
    libssh2_init(0);
    LIBSSH2_SESSION* session = libssh2_session_init();
    LIBSSH2_KNOWNHOSTS* hosts = session ? libssh2_knownhost_init(session) : nullptr;
    std::string problem;
    const std::string where = port == 22 ? host : "[" + host + "]:" + std::to_string(port);
    if (!hosts) {
        problem = "cannot check the host key of " + where + ": libssh2 is out of memory";
    } else if (::access(path.c_str(), R_OK) != 0 ||
               libssh2_knownhost_readfile(hosts, path.c_str(), LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
        problem = "host key of " + where + " not checked: cannot read " + path;
    } else {
        const int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownHostKeyType(key.raw_type);
        switch (libssh2_knownhost_checkp(hosts, host.c_str(), port, key.hostkey, key.hostkey_len, mask, nullptr)) {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            break;
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            problem = "host key of " + where + " does not match " + path + " (the key changed, or someone is in between)";
            break;
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
            problem = where + " is not in " + path + " (add its host key, e.g. with ssh-keyscan)";
            break;
        default:
            problem = "cannot check the host key of " + where + " against " + path;
        }
    }
    if (hosts) libssh2_knownhost_free(hosts);
    if (session) libssh2_session_free(session);
    libssh2_exit();
    return problem;
}

// A failure detected by us rather than by libgit2.
TransferResult outcome(TransferResult::Outcome kind, std::string text) {
    TransferResult result;
    result.outcome = kind;
    result.error = std::move(text);
    return result;
}

} // namespace

// The remote callbacks of one operation: each aborts once the deadline passed, and the first of
// each kind reports a stage.
struct GitTransfer::Callbacks {
    Callbacks(const GitTransfer& transfer, int port) : owner(transfer), sshPort(port) {}
    const GitTransfer& owner;
    int sshPort = 22;       // of the URL, for known_hosts entries of another port
    int sshAttempt = 0;
    bool receiving = false; // the first transfer progress was reported
    bool aborted = false;   // a callback stopped the operation at the deadline
    bool noKey = false;     // SSH asked for a key and none was accepted
    std::string hostKeyProblem; // why the SSH server's host key was refused

    void install(git_remote_callbacks& callbacks) {
        callbacks.transfer_progress = &Callbacks::onTransfer;
        callbacks.sideband_progress = &Callbacks::onSideband;
        callbacks.certificate_check = &Callbacks::onCertificate;
        callbacks.credentials = &Callbacks::onCredentials;
        callbacks.payload = this;
    }
    int abortIfLate() {
        if (Clock::now() < owner.deadline_) return 0;
        aborted = true;
        return -1;
    }
    static int onTransfer(const git_indexer_progress* progress, void* payload) {
        auto* self = static_cast<Callbacks*>(payload);
        if (!self->receiving) {
            self->receiving = true;
            self->owner.stage_("receiving " + std::to_string(progress->total_objects) + " objects");
        }
        return self->abortIfLate();
    }
    static int onSideband(const char*, int, void* payload) { return static_cast<Callbacks*>(payload)->abortIfLate(); }
    static int onCertificate(git_cert* cert, int valid, const char* host, void* payload) {
        auto* self = static_cast<Callbacks*>(payload);
        self->owner.stage_(std::string("checking the certificate of ") + (host ? host : "the server"));
        if (const int abort = self->abortIfLate()) return abort;
        // TLS: libgit2's verdict against the CA store. SSH: ours when libgit2 found no match.
        if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2 || valid) return GIT_PASSTHROUGH;
        self->hostKeyProblem =
            checkKnownHost(host ? host : "", self->sshPort, *reinterpret_cast<const git_cert_hostkey*>(cert));
        return self->hostKeyProblem.empty() ? 0 : GIT_ECERTIFICATE;
    }
    // SSH: the ssh-agent when there is one, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa in turn.
    static int onCredentials(git_credential** out, const char*, const char* user, unsigned int allowed, void* payload) {
        auto* self = static_cast<Callbacks*>(payload);
        if (const int abort = self->abortIfLate()) return abort;
        self->owner.stage_("authenticating");
        const char* name = user && *user ? user : "git";
        if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, name);
        if (!(allowed & GIT_CREDENTIAL_SSH_KEY)) return GIT_PASSTHROUGH;
        while (self->sshAttempt < 4) {
            const int attempt = self->sshAttempt++;
            if (attempt == 0) {
                if (std::getenv("SSH_AUTH_SOCK")) return git_credential_ssh_key_from_agent(out, name);
                continue;
            }
            static const std::array<const char*, 3> keys{"id_ed25519", "id_ecdsa", "id_rsa"};
            const char* home = std::getenv("HOME");
            const std::string key = std::string(home ? home : "/root") + "/.ssh/" + keys[attempt - 1];
            if (::access(key.c_str(), R_OK) == 0)
                return git_credential_ssh_key_new(out, name, nullptr, key.c_str(), nullptr);
        }
        // libgit2 reports a callback's -1 as a user error; this text replaces its generic one.
        self->noKey = true;
        return -1;
    }
};

GitTransfer::GitTransfer(Clock::time_point deadline, std::function<void(const std::string&)> stage)
    : library_(std::make_unique<LibGit2>()), deadline_(deadline), stage_(std::move(stage)) {}

GitTransfer::~GitTransfer() = default;

bool GitTransfer::libraryHasServerTimeouts() {
#ifdef AGENT_LIBGIT2_HAS_SERVER_TIMEOUTS
    return true;
#else
    return false;
#endif
}

// Where libgit2 has them (1.7+, found by CMake), its own connect and read/write timeouts end a
// silent server at the deadline with libgit2's message; elsewhere the agent's kill does.
void GitTransfer::applyServerTimeouts() const {
#ifdef AGENT_LIBGIT2_HAS_SERVER_TIMEOUTS
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    const int ms = static_cast<int>(std::max<long long>(1, std::min<long long>(left, 24LL * 3600 * 1000)));
    git_libgit2_opts(GIT_OPT_SET_SERVER_CONNECT_TIMEOUT, ms);
    git_libgit2_opts(GIT_OPT_SET_SERVER_TIMEOUT, ms);
#endif
}

// A libgit2 call failed during `step` (empty for the transfer itself: the helper's caller names
// it). `callbacks` (of the connection, if any) may know better than libgit2's message.
TransferResult GitTransfer::failed(const Callbacks* callbacks, const std::string& step) const {
    // Our own abort at the deadline: the caller says where the operation was.
    if (callbacks && callbacks->aborted) return outcome(TransferResult::Outcome::TimedOut, "");
    if (callbacks && !callbacks->hostKeyProblem.empty())
        return outcome(TransferResult::Outcome::Failed, callbacks->hostKeyProblem);
    if (callbacks && callbacks->noKey)
        return outcome(TransferResult::Outcome::Failed,
                       "no ssh key was accepted (ssh-agent, ~/.ssh/id_ed25519, id_ecdsa, id_rsa)");
    const std::string text = step.empty() ? lastGitError() : step + ": " + lastGitError();
    // A timeout of libgit2's own lands at the deadline.
    if (Clock::now() + std::chrono::milliseconds(100) >= deadline_) return outcome(TransferResult::Outcome::TimedOut, text);
    return outcome(TransferResult::Outcome::Failed, text);
}

TransferResult GitTransfer::clone(const std::string& url, const std::string& branch, const std::string& destination) {
    applyServerTimeouts();
    // Not git_clone(): it fetches every branch and fails, without a message, on a server whose
    // HEAD names a branch that does not exist. Only the plugin's branch is fetched.
    git_repository* raw = nullptr;
    if (git_repository_init(&raw, destination.c_str(), 0) != 0) return failed(nullptr, "creating " + destination);
    RepositoryPtr repo(raw);
    return fetchAndCheckOut(repo.get(), url, branch, destination);
}

TransferResult GitTransfer::update(const std::string& url, const std::string& branch, const std::string& current,
                                   const std::string& destination) {
    applyServerTimeouts();
    git_repository* rawCurrent = nullptr;
    if (git_repository_open_ext(&rawCurrent, current.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
        return outcome(TransferResult::Outcome::Failed, "cannot open " + current + ": " + lastGitError());
    RepositoryPtr currentRepo(rawCurrent);
    const std::optional<std::string> currentCommit = headCommit(currentRepo.get());
    currentRepo.reset();
    if (!currentCommit) return outcome(TransferResult::Outcome::Failed, current + " has no HEAD commit");

    // 1. Where is the branch on the server? (A detached remote: no repository, no config.)
    // Each connection has callbacks of its own (an SSH key tried on one is tried on the next too).
    Callbacks listing{*this, sshPort(url)};
    git_remote_callbacks remoteCallbacks = GIT_REMOTE_CALLBACKS_INIT;
    listing.install(remoteCallbacks);
    git_proxy_options proxy = GIT_PROXY_OPTIONS_INIT;
    proxy.type = GIT_PROXY_AUTO;
    git_remote* rawRemote = nullptr;
    if (git_remote_create_detached(&rawRemote, url.c_str()) != 0) return failed(nullptr, "");
    RemotePtr remote(rawRemote);
    stage_("connecting to " + url);
    if (git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &remoteCallbacks, &proxy, nullptr) != 0)
        return failed(&listing, "");
    const git_remote_head** heads = nullptr;
    std::size_t count = 0;
    if (git_remote_ls(&heads, &count, remote.get()) != 0) return failed(&listing, "listing the branches");
    const std::string wanted = "refs/heads/" + branch;
    std::optional<std::string> remoteCommit;
    for (std::size_t i = 0; i < count; ++i)
        if (wanted == heads[i]->name) remoteCommit = oidHex(heads[i]->oid);
    git_remote_disconnect(remote.get());
    remote.reset();
    if (!remoteCommit)
        return outcome(TransferResult::Outcome::BranchNotFound, "branch " + branch + " not found in " + url);
    if (*remoteCommit == *currentCommit) {
        TransferResult result;
        result.outcome = TransferResult::Outcome::Unchanged;
        result.commit = *remoteCommit;
        return result;
    }

    // 2. A local clone of the current version, without a checkout: its objects are hard links,
    // so the fetch below only transfers what is new.
    stage_("copying " + current);
    git_clone_options local = GIT_CLONE_OPTIONS_INIT;
    local.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
    git_repository* rawFresh = nullptr;
    if (git_clone(&rawFresh, current.c_str(), destination.c_str(), &local) != 0)
        return failed(nullptr, "local copy of " + current + " into " + destination);
    RepositoryPtr fresh(rawFresh);

    // 3. The branch from the server into the copy, checked out there.
    return fetchAndCheckOut(fresh.get(), url, branch, destination);
}

// Fetches `branch` of `url` into `repo` (at `destination`) as refs/remotes/origin/<branch>, points
// the local branch and HEAD at it, writes its files and leaves origin configured as `url`.
TransferResult GitTransfer::fetchAndCheckOut(git_repository* repo, const std::string& url, const std::string& branch,
                                             const std::string& destination) {
    git_remote* rawRemote = nullptr;
    if (createRemote(&rawRemote, repo, nullptr, url.c_str()) != 0) return failed(nullptr, "");
    RemotePtr remote(rawRemote);
    git_fetch_options fetchOptions = GIT_FETCH_OPTIONS_INIT;
    fetchOptions.proxy_opts.type = GIT_PROXY_AUTO;
    fetchOptions.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    Callbacks fetching{*this, sshPort(url)};
    fetching.install(fetchOptions.callbacks);
    const std::string local = "refs/heads/" + branch;
    const std::string tracking = "refs/remotes/origin/" + branch;
    std::string spec = "+" + local + ":" + tracking;
    char* specs[] = {spec.data()};
    const git_strarray refspecs{specs, 1};
    stage_("connecting to " + url);
    if (git_remote_fetch(remote.get(), &refspecs, &fetchOptions, "agent plugin checkout") != 0)
        return failed(&fetching, "");
    remote.reset();

    // The server may have moved since an earlier listing: take what the fetch brought.
    git_oid fetched;
    if (git_reference_name_to_id(&fetched, repo, tracking.c_str()) != 0)
        return outcome(TransferResult::Outcome::BranchNotFound, "branch " + branch + " not found in " + url);
    git_object* rawTarget = nullptr;
    if (git_object_lookup(&rawTarget, repo, &fetched, GIT_OBJECT_COMMIT) != 0)
        return failed(nullptr, "fetched commit " + oidHex(fetched));
    ObjectPtr target(rawTarget);
    git_reference* branchRef = nullptr;
    if (git_reference_create(&branchRef, repo, local.c_str(), &fetched, 1, "agent plugin checkout") != 0)
        return failed(nullptr, "moving " + branch + " in " + destination);
    git_reference_free(branchRef);
    if (git_repository_set_head(repo, local.c_str()) != 0) return failed(nullptr, "HEAD of " + destination);
    stage_("checking out " + oidHex(fetched));
    git_checkout_options checkout = GIT_CHECKOUT_OPTIONS_INIT;
    checkout.checkout_strategy = GIT_CHECKOUT_FORCE;
    if (git_reset(repo, target.get(), GIT_RESET_HARD, &checkout) != 0)
        return failed(nullptr, "checkout of " + branch + " into " + destination);
    target.reset();

    git_config* rawConfig = nullptr;
    if (git_repository_config(&rawConfig, repo) != 0) return failed(nullptr, "configuring origin in " + destination);
    ConfigPtr config(rawConfig);
    if (git_config_set_string(config.get(), "remote.origin.url", url.c_str()) != 0 ||
        git_config_set_string(config.get(), "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*") != 0)
        return failed(nullptr, "configuring origin in " + destination);
    TransferResult result;
    result.outcome = TransferResult::Outcome::Changed;
    result.commit = oidHex(fetched);
    return result;
}

} // namespace agent::exec
