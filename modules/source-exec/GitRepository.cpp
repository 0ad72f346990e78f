// Plugin checkouts with libgit2 1.5: address checks, clone, fetch and the atomic symlink switch
// (see GitRepository.h for the layout and for what the timeout bounds). Touches only
// <pluginsdir>/<ns>/ entries named <project> and .<project>.<suffix>.
#include "GitRepository.h"

#include <git2.h>
#include <git2/sys/stream.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <netdb.h>
#include <poll.h>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#if LIBGIT2_VER_MAJOR != 1 || LIBGIT2_VER_MINOR != 5
// TimedSocketStream mirrors the layout of libgit2 1.5's private git_socket_stream because the
// SSH transport reads the socket out of it. Check src/libgit2/streams/socket.h and
// transports/ssh.c of the new version (1.7+ also has GIT_OPT_SET_SERVER_TIMEOUT) before
// changing this line.
#error "GitRepository.cpp is written against libgit2 1.5"
#endif

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace agent::exec {

// ---------------------------------------------------------------------------------------------
// Names and addresses

bool isSafeComponent(std::string_view name) {
    if (name.empty() || name.size() > 128 || name == "." || name == ".." || name.front() == '.') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
               c == '-';
    });
}

namespace {

std::vector<std::string> splitPath(std::string_view path) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t end = std::min(path.find('/', start), path.size());
        parts.emplace_back(path.substr(start, end - start));
        start = end + 1;
    }
    return parts;
}

} // namespace

std::optional<std::string> projectPath(const std::string& registryGit, std::string& error) {
    if (registryGit.find('\0') != std::string::npos) {
        error = "git address contains a NUL byte";
        return std::nullopt;
    }
    if (registryGit.empty()) {
        error = "git address is empty";
        return std::nullopt;
    }
    std::string path;
    bool fileUrl = false;
    const std::size_t scheme = registryGit.find("://");
    if (scheme != std::string::npos) {
        const std::string name = registryGit.substr(0, scheme);
        if (name != "https" && name != "http" && name != "ssh" && name != "git" && name != "file") {
            error = "unsupported git address scheme '" + name + "' in " + registryGit;
            return std::nullopt;
        }
        fileUrl = name == "file";
        const std::string rest = registryGit.substr(scheme + 3);
        const std::size_t slash = rest.find('/');
        if (slash == std::string::npos || (!fileUrl && slash == 0)) {
            error = "git address has no host or no path: " + registryGit;
            return std::nullopt;
        }
        path = rest.substr(slash + 1);
    } else {
        // scp-like user@host:path; the host part has no '/'
        const std::size_t colon = registryGit.find(':');
        const std::size_t slash = registryGit.find('/');
        if (colon == std::string::npos || colon == 0 || (slash != std::string::npos && slash < colon)) {
            error = "not a git address (expected scheme://host/group/project.git or user@host:group/project.git): " +
                    registryGit;
            return std::nullopt;
        }
        path = registryGit.substr(colon + 1);
        if (!path.empty() && path.front() == '/') path.erase(0, 1);
    }
    while (!path.empty() && path.back() == '/')
        path.pop_back();
    if (path.size() > 4 && path.ends_with(".git")) path.resize(path.size() - 4);
    std::vector<std::string> parts = splitPath(path);
    if (fileUrl && parts.size() > 2) parts.erase(parts.begin(), parts.end() - 2);
    if (parts.size() < 2) {
        error = "git address names no group/project: " + registryGit;
        return std::nullopt;
    }
    std::string joined;
    for (const std::string& part : parts) {
        if (!isSafeComponent(part)) {
            error = "unsafe path component '" + part + "' in git address " + registryGit;
            return std::nullopt;
        }
        joined += (joined.empty() ? "" : "/") + part;
    }
    return joined;
}

std::string projectName(const std::string& projectPath) {
    const std::size_t slash = projectPath.rfind('/');
    return slash == std::string::npos ? projectPath : projectPath.substr(slash + 1);
}

std::string cloneUrl(const std::string& gitTemplate, const std::string& registryGit) {
    std::string error;
    const std::optional<std::string> path = projectPath(registryGit, error);
    if (!path) return {};
    if (gitTemplate.empty()) return registryGit;
    std::string url = gitTemplate;
    const std::size_t at = url.find("%s");
    if (at != std::string::npos) url.replace(at, 2, *path);
    return url;
}

// ---------------------------------------------------------------------------------------------
// Deadlines: one per network operation of a thread

namespace {

// The deadline of the operation running on this thread, with the sockets it has open. A
// watchdog thread shuts those sockets down when the deadline passes or the limiter stops, which
// wakes a libssh2 blocked on its socket; our own stream polls with the deadline anyway.
class GitDeadline {
public:
    GitDeadline(std::chrono::milliseconds timeout, const std::atomic<bool>& stop)
        : timeout_(timeout), deadline_(Clock::now() + timeout), stop_(stop) {
        watchdog_ = std::thread([this] { watch(); });
    }
    ~GitDeadline() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        wake_.notify_all();
        watchdog_.join();
    }
    GitDeadline(const GitDeadline&) = delete;
    GitDeadline& operator=(const GitDeadline&) = delete;

    // True (and remembered) once the deadline passed or the agent is stopping.
    bool expired() {
        if (stop_.load()) stopped_ = true;
        if (Clock::now() >= deadline_) timedOut_ = true;
        return timedOut_ || stopped_;
    }
    int remainingMs() const {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
        return left < 0 ? 0 : static_cast<int>(left);
    }
    bool timedOut() const { return timedOut_; }
    bool stopped() const { return stopped_; }
    // Sets libgit2's error to say why the operation is being aborted.
    void setAbortError() const { git_error_set_str(GIT_ERROR_NET, abortReason().c_str()); }
    std::string abortReason() const {
        if (stopped_) return "agent is stopping";
        if (timeout_.count() % 1000 == 0) return "timed out after " + std::to_string(timeout_.count() / 1000) + " s";
        return "timed out after " + std::to_string(timeout_.count()) + " ms";
    }

    void addSocket(int fd) {
        std::lock_guard lock(mutex_);
        sockets_.insert(fd);
        if (fired_) ::shutdown(fd, SHUT_RDWR);
    }
    // Before close(), so the watchdog never shuts down a descriptor number reused elsewhere.
    void removeSocket(int fd) {
        std::lock_guard lock(mutex_);
        sockets_.erase(fd);
    }

private:
    void watch() {
        std::unique_lock lock(mutex_);
        while (!done_) {
            if (Clock::now() >= deadline_ || stop_.load()) {
                fired_ = true;
                for (int fd : sockets_)
                    ::shutdown(fd, SHUT_RDWR);
            }
            wake_.wait_for(lock, std::chrono::milliseconds(100));
        }
    }

    const std::chrono::milliseconds timeout_;
    const Clock::time_point deadline_;
    const std::atomic<bool>& stop_;
    // Only the operation's own thread reads and writes these two.
    bool timedOut_ = false;
    bool stopped_ = false;
    std::mutex mutex_; // guards done_, fired_, sockets_
    std::condition_variable wake_;
    bool done_ = false;
    bool fired_ = false;
    std::set<int> sockets_;
    std::thread watchdog_;
};

// Set by GitOperation for the thread running it; the stream and the callbacks read it.
thread_local GitDeadline* currentDeadline = nullptr;

// ---------------------------------------------------------------------------------------------
// A TCP stream for libgit2 whose connect, read and write end at the deadline

// The first four members mirror libgit2 1.5's git_socket_stream: transports/ssh.c hands
// `s` to libssh2 directly.
struct TimedSocketStream {
    git_stream parent;
    char* host;
    char* port;
    int s;
    GitDeadline* deadline; // of the operation that opened it; null outside one
};

// Waits until `fd` is ready for `events`; false with libgit2's error set when the deadline
// passes first. Without a deadline (libgit2 used outside GitRepository) it waits as libgit2 would.
bool waitReady(TimedSocketStream* st, short events, const char* what) {
    while (true) {
        int wait = -1;
        if (st->deadline) {
            if (st->deadline->expired()) {
                st->deadline->setAbortError();
                return false;
            }
            wait = std::min(st->deadline->remainingMs(), 100);
        }
        pollfd p{st->s, events, 0};
        const int n = ::poll(&p, 1, wait);
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) {
            git_error_set(GIT_ERROR_OS, "poll while %s %s: %s", what, st->host, std::strerror(errno));
            return false;
        }
    }
}

int streamConnect(git_stream* stream) {
    auto* st = reinterpret_cast<TimedSocketStream*>(stream);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(st->host, st->port, &hints, &found); rc != 0) {
        git_error_set(GIT_ERROR_NET, "cannot resolve %s: %s", st->host, gai_strerror(rc));
        return -1;
    }
    std::string lastError = "no address";
    for (addrinfo* a = found; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            lastError = std::strerror(errno);
            continue;
        }
        st->s = fd;
        if (st->deadline) st->deadline->addSocket(fd);
        bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        if (!connected && errno == EINPROGRESS) {
            if (!waitReady(st, POLLOUT, "connecting to")) {
                ::freeaddrinfo(found);
                return -1; // the stream's close/free releases the socket
            }
            int soError = 0;
            socklen_t len = sizeof soError;
            if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) != 0) soError = errno;
            connected = soError == 0;
            errno = soError;
        }
        if (connected) {
            const int flags = ::fcntl(fd, F_GETFL);
            if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
                lastError = std::string("fcntl: ") + std::strerror(errno);
            } else {
                ::freeaddrinfo(found);
                return 0;
            }
        } else {
            lastError = std::strerror(errno);
        }
        if (st->deadline) st->deadline->removeSocket(fd);
        ::close(fd);
        st->s = -1;
    }
    ::freeaddrinfo(found);
    git_error_set(GIT_ERROR_NET, "cannot connect to %s:%s: %s", st->host, st->port, lastError.c_str());
    return -1;
}

ssize_t streamRead(git_stream* stream, void* data, size_t len) {
    auto* st = reinterpret_cast<TimedSocketStream*>(stream);
    if (!waitReady(st, POLLIN, "reading from")) return -1;
    ssize_t n;
    do {
        n = ::recv(st->s, data, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) git_error_set(GIT_ERROR_NET, "error receiving data from %s: %s", st->host, std::strerror(errno));
    return n;
}

ssize_t streamWrite(git_stream* stream, const char* data, size_t len, int flags) {
    auto* st = reinterpret_cast<TimedSocketStream*>(stream);
    if (!waitReady(st, POLLOUT, "writing to")) return -1;
    ssize_t n;
    do {
        n = ::send(st->s, data, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) git_error_set(GIT_ERROR_NET, "error sending data to %s: %s", st->host, std::strerror(errno));
    return n;
}

int streamClose(git_stream* stream) {
    auto* st = reinterpret_cast<TimedSocketStream*>(stream);
    if (st->s >= 0) {
        if (st->deadline) st->deadline->removeSocket(st->s);
        ::close(st->s);
        st->s = -1;
    }
    return 0;
}

void streamFree(git_stream* stream) {
    auto* st = reinterpret_cast<TimedSocketStream*>(stream);
    streamClose(stream);
    std::free(st->host);
    std::free(st->port);
    std::free(st);
}

int streamNew(git_stream** out, const char* host, const char* port) {
    // calloc/free: the struct is a C layout libgit2 reads, with C strings it may outlive us with.
    auto* st = static_cast<TimedSocketStream*>(std::calloc(1, sizeof(TimedSocketStream)));
    if (!st) {
        git_error_set_oom();
        return -1;
    }
    st->host = ::strdup(host);
    st->port = ::strdup(port);
    if (!st->host || !st->port) {
        std::free(st->host);
        std::free(st->port);
        std::free(st);
        git_error_set_oom();
        return -1;
    }
    st->s = -1;
    st->deadline = currentDeadline;
    st->parent.version = GIT_STREAM_VERSION;
    st->parent.connect = streamConnect;
    st->parent.read = streamRead;
    st->parent.write = streamWrite;
    st->parent.close = streamClose;
    st->parent.free = streamFree;
    *out = &st->parent;
    return 0;
}

// libgit2's init is reference-counted; its stream registry is cleared by the last shutdown, so
// the stream is registered again whenever the count goes from 0 to 1.
std::mutex libraryMutex;

void libraryInit() {
    std::lock_guard lock(libraryMutex);
    const int count = git_libgit2_init();
    if (count < 0) {
        const git_error* e = git_error_last();
        throw std::runtime_error(std::string("libgit2 init failed: ") + (e ? e->message : "unknown error"));
    }
    if (count == 1) {
        static git_stream_registration registration{GIT_STREAM_VERSION, streamNew, nullptr};
        if (git_stream_register(GIT_STREAM_STANDARD, &registration) != 0) {
            const git_error* e = git_error_last();
            git_libgit2_shutdown();
            throw std::runtime_error(std::string("libgit2 stream registration failed: ") +
                                     (e ? e->message : "unknown error"));
        }
    }
}

void libraryShutdown() {
    std::lock_guard lock(libraryMutex);
    git_libgit2_shutdown();
}

// libgit2 initialised for a scope.
struct LibraryUse {
    LibraryUse() { libraryInit(); }
    ~LibraryUse() { libraryShutdown(); }
    LibraryUse(const LibraryUse&) = delete;
    LibraryUse& operator=(const LibraryUse&) = delete;
};

// ---------------------------------------------------------------------------------------------
// One bounded network operation: its deadline, callbacks and error text

std::string lastGitError() {
    const git_error* e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

class GitOperation {
public:
    GitOperation(std::chrono::milliseconds timeout, const std::atomic<bool>& stop) : deadline_(timeout, stop) {
        currentDeadline = &deadline_;
    }
    ~GitOperation() { currentDeadline = nullptr; }
    GitOperation(const GitOperation&) = delete;
    GitOperation& operator=(const GitOperation&) = delete;

    void setCallbacks(git_remote_callbacks& callbacks) {
        callbacks.transfer_progress = &GitOperation::onTransfer;
        callbacks.sideband_progress = &GitOperation::onSideband;
        callbacks.certificate_check = &GitOperation::onCertificate;
        callbacks.credentials = &GitOperation::onCredentials;
        callbacks.payload = this;
    }

    // The error for a failed libgit2 call: the abort reason when the deadline or a stop caused it.
    std::string error(const std::string& action) {
        deadline_.expired();
        if (deadline_.timedOut() || deadline_.stopped()) {
            const std::string reason = deadline_.abortReason();
            const std::string detail = lastGitError();
            return action + ": " + reason + (detail == reason ? "" : " (" + detail + ")");
        }
        return action + ": " + lastGitError();
    }
    bool expired() { return deadline_.expired(); }

private:
    int abortIfExpired() {
        if (!deadline_.expired()) return 0;
        deadline_.setAbortError();
        return -1;
    }
    static int onTransfer(const git_indexer_progress*, void* payload) {
        return static_cast<GitOperation*>(payload)->abortIfExpired();
    }
    static int onSideband(const char*, int, void* payload) {
        return static_cast<GitOperation*>(payload)->abortIfExpired();
    }
    static int onCertificate(git_cert*, int, const char*, void* payload) {
        // Keep libgit2's own verdict (CA store for TLS, known_hosts for SSH); only add the deadline.
        const int abort = static_cast<GitOperation*>(payload)->abortIfExpired();
        return abort ? abort : GIT_PASSTHROUGH;
    }
    // SSH: the ssh-agent when there is one, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa in turn.
    static int onCredentials(git_credential** out, const char*, const char* user, unsigned int allowed, void* payload) {
        auto* self = static_cast<GitOperation*>(payload);
        if (const int abort = self->abortIfExpired()) return abort;
        const char* name = user && *user ? user : "git";
        if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, name);
        if (!(allowed & GIT_CREDENTIAL_SSH_KEY)) return GIT_PASSTHROUGH;
        while (self->sshAttempt_ < 4) {
            const int attempt = self->sshAttempt_++;
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
        git_error_set_str(GIT_ERROR_SSH, "no ssh key was accepted (ssh-agent, ~/.ssh/id_ed25519, id_ecdsa, id_rsa)");
        return -1;
    }

    GitDeadline deadline_;
    int sshAttempt_ = 0;
};

// RAII for libgit2 objects.
template <typename T, void (*Free)(T*)> struct GitFree {
    void operator()(T* p) const { Free(p); }
};
using RepositoryPtr = std::unique_ptr<git_repository, GitFree<git_repository, git_repository_free>>;
using RemotePtr = std::unique_ptr<git_remote, GitFree<git_remote, git_remote_free>>;
using ConfigPtr = std::unique_ptr<git_config, GitFree<git_config, git_config_free>>;

std::string oidHex(const git_oid& oid) {
    char text[GIT_OID_HEXSZ + 1];
    git_oid_tostr(text, sizeof text, &oid);
    return text;
}

std::optional<git_oid> headCommit(git_repository* repo) {
    git_oid oid;
    if (git_reference_name_to_id(&oid, repo, "HEAD") != 0) return std::nullopt;
    return oid;
}

// ---------------------------------------------------------------------------------------------
// Directory layout

std::string randomSuffix() {
    static thread_local std::mt19937_64 random{std::random_device{}()};
    static constexpr char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::string s(8, '0');
    for (char& c : s)
        c = alphabet[random() % (sizeof alphabet - 1)];
    return s;
}

// Whether `entry` is one of this layout's siblings of project `name`: .<name>.<suffix> with
// suffix <12 hex>[-N] or (tmp|link|old)-<8 chars>.
bool isVersionEntry(const std::string& entry, const std::string& name) {
    const std::string prefix = "." + name + ".";
    if (!entry.starts_with(prefix)) return false;
    const std::string suffix = entry.substr(prefix.size());
    auto isHex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    auto isAlnum = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); };
    if (suffix.size() >= 12 && std::all_of(suffix.begin(), suffix.begin() + 12, isHex)) {
        if (suffix.size() == 12) return true;
        return suffix.size() > 13 && suffix[12] == '-' && std::all_of(suffix.begin() + 13, suffix.end(), ::isdigit);
    }
    for (const char* kind : {"tmp-", "link-", "old-"}) {
        const std::string k = kind;
        if (suffix.size() == k.size() + 8 && suffix.starts_with(k) &&
            std::all_of(suffix.begin() + static_cast<long>(k.size()), suffix.end(), isAlnum))
            return true;
    }
    return false;
}

void removeQuietly(const fs::path& path, std::string* error = nullptr) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec && error) *error = "cannot remove " + path.string() + ": " + ec.message();
}

void syncDirectory(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return; // durability only; the rename itself already succeeded
    ::fsync(fd);
    ::close(fd);
}

// Points `target` at sibling `version` atomically: a new symlink under a temporary name renamed
// over the old one. A real directory at `target` (a legacy clone) is first moved aside (its new
// name in `aside`), which leaves `target` missing for the moment between the two renames.
bool switchLink(const fs::path& target, const std::string& version, std::string& aside, std::string& error) {
    const fs::path dir = target.parent_path();
    const std::string name = target.filename().string();
    const fs::path link = dir / ("." + name + ".link-" + randomSuffix());
    if (::symlink(version.c_str(), link.c_str()) != 0) {
        error = "symlink " + link.string() + ": " + std::strerror(errno);
        return false;
    }
    struct stat st {};
    if (::lstat(target.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) {
        aside = "." + name + ".old-" + randomSuffix();
        if (::rename(target.c_str(), (dir / aside).c_str()) != 0) {
            error = "cannot move " + target.string() + " aside: " + std::strerror(errno);
            ::unlink(link.c_str());
            return false;
        }
    }
    if (::rename(link.c_str(), target.c_str()) != 0) {
        error = "rename " + link.string() + " to " + target.string() + ": " + std::strerror(errno);
        ::unlink(link.c_str());
        return false;
    }
    syncDirectory(dir);
    return true;
}

// Removes this project's siblings except the versions in `keep`.
void removeOldVersions(const fs::path& target, const std::set<std::string>& keep) {
    const std::string name = target.filename().string();
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(target.parent_path(), ec)) {
        const std::string entryName = entry.path().filename().string();
        if (isVersionEntry(entryName, name) && !keep.contains(entryName)) removeQuietly(entry.path());
    }
}

// The version directory `target` points at (its name), or empty.
std::string linkedVersion(const fs::path& target) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(target, ec))) return {};
    const fs::path to = fs::read_symlink(target, ec);
    return ec ? std::string() : to.filename().string();
}

fs::path freshVersionPath(const fs::path& target, const std::string& commit) {
    const std::string base = "." + target.filename().string() + "." + commit.substr(0, 12);
    fs::path path = target.parent_path() / base;
    std::error_code ec;
    for (int n = 2; fs::exists(fs::symlink_status(path, ec)); ++n)
        path = target.parent_path() / (base + "-" + std::to_string(n));
    return path;
}

GitResult failure(std::string error) {
    GitResult result;
    result.error = std::move(error);
    return result;
}

// Moves the finished checkout `tmp` into its version directory, switches `target` to it and
// removes versions older than the one it replaced.
GitResult install(const fs::path& target, const fs::path& tmp, const std::string& commit) {
    const std::string previous = linkedVersion(target);
    const fs::path version = freshVersionPath(target, commit);
    if (::rename(tmp.c_str(), version.c_str()) != 0) {
        const std::string error = "rename " + tmp.string() + " to " + version.string() + ": " + std::strerror(errno);
        removeQuietly(tmp);
        return failure(error);
    }
    std::string error;
    std::string aside;
    if (!switchLink(target, version.filename().string(), aside, error)) {
        removeQuietly(version);
        return failure(error);
    }
    // The replaced version may be running: it stays until the next switch.
    std::set<std::string> keep{version.filename().string()};
    if (!previous.empty()) keep.insert(previous);
    if (!aside.empty()) keep.insert(aside);
    removeOldVersions(target, keep);
    GitResult result;
    result.ok = true;
    result.commit = commit;
    result.changed = true;
    return result;
}

std::string branchOrDefault(const std::string& branch) {
    return branch.empty() ? kDefaultPluginBranch : branch;
}

// Remotes are made without url.<base>.insteadOf rewriting: the agent passes the URL it means,
// and libgit2 1.5's insteadOf lookup leaks pcre2 match data on every config entry it does not
// match (fixed upstream by libgit2 PR #6382, not in Debian's 1.5.1).
int createRemote(git_remote** out, git_repository* repo, const char* name, const char* url, const char* fetchspec) {
    git_remote_create_options options = GIT_REMOTE_CREATE_OPTIONS_INIT;
    options.repository = repo;
    options.name = name;
    options.fetchspec = fetchspec;
    options.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
    return git_remote_create_with_opts(out, url, &options);
}

// Clone's remote for a fresh clone: origin with the default fetchspec.
int remoteForClone(git_remote** out, git_repository* repo, const char* name, const char* url, void*) {
    return createRemote(out, repo, name, url, nullptr);
}

// Clone's remote for a checkout made from the previous version: it fetches the previous
// version's remote-tracking branch, so the new checkout gets the commit just fetched there.
int remoteFromPrevious(git_remote** out, git_repository* repo, const char* name, const char* url, void* payload) {
    const auto* branch = static_cast<const std::string*>(payload);
    const std::string spec = "+refs/remotes/origin/" + *branch + ":refs/remotes/origin/" + *branch;
    return createRemote(out, repo, name, url, spec.c_str());
}

} // namespace

// ---------------------------------------------------------------------------------------------
// GitFetchLimiter

GitFetchLimiter::GitFetchLimiter(unsigned maxConcurrent, std::chrono::milliseconds splay)
    : maxConcurrent_(std::max(1u, maxConcurrent)), splay_(splay), random_(std::random_device{}()) {}

GitFetchLimiter::Slot::~Slot() {
    if (limiter_) limiter_->release();
}

std::optional<GitFetchLimiter::Slot> GitFetchLimiter::acquire() {
    std::unique_lock lock(mutex_);
    if (splay_.count() > 0) {
        const auto delay = std::chrono::milliseconds(random_() % static_cast<std::uint64_t>(splay_.count() + 1));
        changed_.wait_for(lock, delay, [this] { return stopping_.load(); });
    }
    changed_.wait(lock, [this] { return stopping_.load() || active_ < maxConcurrent_; });
    if (stopping_.load()) return std::nullopt;
    ++active_;
    peak_ = std::max(peak_, active_);
    return std::optional<Slot>(std::in_place, this);
}

void GitFetchLimiter::release() {
    {
        std::lock_guard lock(mutex_);
        --active_;
    }
    changed_.notify_all();
}

void GitFetchLimiter::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
}

unsigned GitFetchLimiter::active() const {
    std::lock_guard lock(mutex_);
    return active_;
}

unsigned GitFetchLimiter::peakActive() const {
    std::lock_guard lock(mutex_);
    return peak_;
}

// ---------------------------------------------------------------------------------------------
// GitRepository

GitRepository::GitRepository(GitFetchLimiter& limiter) : limiter_(limiter) {
    libraryInit();
}

GitRepository::~GitRepository() {
    libraryShutdown();
}

std::shared_ptr<std::mutex> GitRepository::targetMutex(const std::string& target) {
    std::lock_guard lock(targetsMutex_);
    std::shared_ptr<std::mutex>& m = targets_[fs::path(target).lexically_normal().string()];
    if (!m) m = std::make_shared<std::mutex>();
    return m;
}

std::optional<std::string> GitRepository::checkedOutCommit(const std::string& target) {
    std::error_code ec;
    if (!fs::is_directory(target, ec)) return std::nullopt;
    const LibraryUse library;
    git_repository* raw = nullptr;
    if (git_repository_open_ext(&raw, target.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) return std::nullopt;
    RepositoryPtr repo(raw);
    const std::optional<git_oid> head = headCommit(repo.get());
    if (!head) return std::nullopt;
    return oidHex(*head);
}

GitResult GitRepository::ensure(const std::string& url, const std::string& branch, const std::string& target,
                                std::chrono::milliseconds timeout) {
    const std::shared_ptr<std::mutex> mutex = targetMutex(target);
    std::lock_guard lock(*mutex);
    if (std::optional<std::string> commit = checkedOutCommit(target)) {
        GitResult result;
        result.ok = true;
        result.commit = std::move(*commit);
        return result;
    }
    return clone(url, branch, target, timeout);
}

GitResult GitRepository::clone(const std::string& url, const std::string& branchName, const std::string& targetPath,
                               std::chrono::milliseconds timeout) {
    const std::string branch = branchOrDefault(branchName);
    const fs::path target = fs::path(targetPath).lexically_normal();
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return failure("cannot create " + target.parent_path().string() + ": " + ec.message());

    std::optional<GitFetchLimiter::Slot> slot = limiter_.acquire();
    if (!slot) return failure("git clone of " + url + ": agent is stopping");
    GitOperation operation(timeout, limiter_.stopFlag());

    const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + randomSuffix());
    git_clone_options options = GIT_CLONE_OPTIONS_INIT;
    options.checkout_branch = branch.c_str();
    options.remote_cb = remoteForClone;
    options.fetch_opts.proxy_opts.type = GIT_PROXY_AUTO;
    operation.setCallbacks(options.fetch_opts.callbacks);
    git_repository* raw = nullptr;
    const int rc = git_clone(&raw, url.c_str(), tmp.c_str(), &options);
    RepositoryPtr repo(raw);
    if (rc != 0) {
        const std::string message = lastGitError();
        std::string error;
        if (rc == GIT_ENOTFOUND && message.find("refs/remotes/origin/" + branch) != std::string::npos)
            error = "branch " + branch + " not found in " + url;
        else
            error = operation.error("git clone of " + url);
        repo.reset();
        removeQuietly(tmp);
        return failure(error);
    }
    const std::optional<git_oid> head = headCommit(repo.get());
    repo.reset();
    if (!head) {
        removeQuietly(tmp);
        return failure("git clone of " + url + ": no HEAD commit after the clone");
    }
    return install(target, tmp, oidHex(*head));
}

GitResult GitRepository::update(const std::string& url, const std::string& branchName, const std::string& targetPath,
                                std::chrono::milliseconds timeout) {
    const std::shared_ptr<std::mutex> mutex = targetMutex(targetPath);
    std::lock_guard lock(*mutex);
    const std::optional<std::string> current = checkedOutCommit(targetPath);
    if (!current) return clone(url, branchName, targetPath, timeout);

    const std::string branch = branchOrDefault(branchName);
    const fs::path target = fs::path(targetPath).lexically_normal();
    std::error_code ec;
    const fs::path currentDir = fs::canonical(target, ec);
    if (ec) return failure("cannot resolve " + target.string() + ": " + ec.message());

    std::optional<GitFetchLimiter::Slot> slot = limiter_.acquire();
    if (!slot) return failure("git fetch of " + url + ": agent is stopping");
    GitOperation operation(timeout, limiter_.stopFlag());

    git_repository* rawRepo = nullptr;
    if (git_repository_open_ext(&rawRepo, currentDir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
        return failure("cannot open " + currentDir.string() + ": " + lastGitError());
    RepositoryPtr repo(rawRepo);
    // An anonymous remote for the URL given now (the registry or the URL template may have
    // changed it since the clone); the refspec below still updates refs/remotes/origin/<branch>.
    git_remote* rawRemote = nullptr;
    if (createRemote(&rawRemote, repo.get(), nullptr, url.c_str(), nullptr) != 0)
        return failure("git fetch of " + url + ": " + lastGitError());
    RemotePtr remote(rawRemote);

    git_fetch_options fetchOptions = GIT_FETCH_OPTIONS_INIT;
    fetchOptions.proxy_opts.type = GIT_PROXY_AUTO;
    fetchOptions.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    operation.setCallbacks(fetchOptions.callbacks);
    if (git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &fetchOptions.callbacks, &fetchOptions.proxy_opts,
                           nullptr) != 0)
        return failure(operation.error("git fetch of " + url));

    const git_remote_head** heads = nullptr;
    std::size_t count = 0;
    if (git_remote_ls(&heads, &count, remote.get()) != 0) return failure(operation.error("git fetch of " + url));
    const std::string wanted = "refs/heads/" + branch;
    const git_remote_head* head = nullptr;
    for (std::size_t i = 0; i < count; ++i)
        if (wanted == heads[i]->name) head = heads[i];
    if (!head) return failure("branch " + branch + " not found in " + url);
    const std::string remoteCommit = oidHex(head->oid);
    if (remoteCommit == *current) {
        git_remote_disconnect(remote.get());
        GitResult result;
        result.ok = true;
        result.commit = remoteCommit;
        return result;
    }

    std::string spec = "+" + wanted + ":refs/remotes/origin/" + branch;
    char* specs[] = {spec.data()};
    const git_strarray refspecs{specs, 1};
    if (git_remote_download(remote.get(), &refspecs, &fetchOptions) != 0)
        return failure(operation.error("git fetch of " + url));
    if (git_remote_update_tips(remote.get(), &fetchOptions.callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE,
                               "agent plugin update") != 0)
        return failure(operation.error("git fetch of " + url));
    git_remote_disconnect(remote.get());
    remote.reset();
    repo.reset();

    // The new version is a local clone of the current one (objects hard-linked), so a running
    // plugin's tree is never touched; its origin is then pointed back at the real server.
    const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + randomSuffix());
    git_clone_options options = GIT_CLONE_OPTIONS_INIT;
    options.checkout_branch = branch.c_str();
    options.remote_cb = remoteFromPrevious;
    options.remote_cb_payload = const_cast<std::string*>(&branch);
    operation.setCallbacks(options.fetch_opts.callbacks);
    git_repository* rawClone = nullptr;
    const int rc = git_clone(&rawClone, currentDir.c_str(), tmp.c_str(), &options);
    RepositoryPtr fresh(rawClone);
    auto fail = [&](const std::string& error) {
        fresh.reset();
        removeQuietly(tmp);
        return failure(error);
    };
    if (rc != 0) return fail(operation.error("checkout of the fetched " + branch + " into " + tmp.string()));
    const std::optional<git_oid> freshHead = headCommit(fresh.get());
    if (!freshHead || oidHex(*freshHead) != remoteCommit)
        return fail("checkout of " + branch + " into " + tmp.string() + " is not at the fetched commit " +
                    remoteCommit);
    git_config* rawConfig = nullptr;
    if (git_repository_config(&rawConfig, fresh.get()) != 0)
        return fail("cannot configure origin in " + tmp.string() + ": " + lastGitError());
    ConfigPtr config(rawConfig);
    if (git_config_set_string(config.get(), "remote.origin.url", url.c_str()) != 0 ||
        git_config_set_string(config.get(), "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*") != 0)
        return fail("cannot configure origin in " + tmp.string() + ": " + lastGitError());
    config.reset();
    fresh.reset();
    return install(target, tmp, remoteCommit);
}

} // namespace agent::exec
