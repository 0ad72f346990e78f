// Plugin checkouts: address checks, clones and fetches through the git helper, and the atomic
// symlink switch (see GitRepository.h for the layout and for what the timeout bounds). Touches only
// <pluginsdir>/<ns>/ entries named <project> and .<project>.<suffix>.
#include "GitRepository.h"
#include "LibGit2.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

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
// Directory layout

namespace {

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

GitRepository::GitRepository(GitFetchLimiter& limiter, std::string helperPath)
    : library_(std::make_unique<LibGit2>()), limiter_(limiter), transfer_(std::move(helperPath)) {}

GitRepository::~GitRepository() = default;

std::shared_ptr<std::mutex> GitRepository::targetMutex(const std::string& target) {
    std::lock_guard lock(targetsMutex_);
    std::shared_ptr<std::mutex>& m = targets_[fs::path(target).lexically_normal().string()];
    if (!m) m = std::make_shared<std::mutex>();
    return m;
}

std::optional<std::string> GitRepository::checkedOutCommit(const std::string& target) {
    std::error_code ec;
    if (!fs::is_directory(target, ec)) return std::nullopt;
    // Cheap while a GitRepository holds libgit2 initialised; costs a full init otherwise.
    const LibGit2 library;
    git_repository* raw = nullptr;
    if (git_repository_open_ext(&raw, target.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) return std::nullopt;
    RepositoryPtr repo(raw);
    return headCommit(repo.get());
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

namespace {

// The error text for a helper's failure: "<action>: <what happened>", or the helper's own
// sentence when it names the failure itself (a missing branch).
std::string describeFailure(const std::string& action, const TransferResult& result) {
    if (result.outcome == TransferResult::Outcome::BranchNotFound) return result.error;
    return action + ": " + result.error;
}

} // namespace

GitResult GitRepository::clone(const std::string& url, const std::string& branchName, const std::string& targetPath,
                               std::chrono::milliseconds timeout) {
    const std::string branch = branchOrDefault(branchName);
    const fs::path target = fs::path(targetPath).lexically_normal();
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return failure("cannot create " + target.parent_path().string() + ": " + ec.message());

    std::optional<GitFetchLimiter::Slot> slot = limiter_.acquire();
    if (!slot) return failure("git clone of " + url + ": agent is stopping");
    const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + randomSuffix());
    const TransferResult result = transfer_.run({"clone", url, branch, tmp.string()}, timeout, limiter_.stopFlag());
    if (result.outcome != TransferResult::Outcome::Changed) {
        removeQuietly(tmp);
        return failure(describeFailure("git clone of " + url, result));
    }
    return install(target, tmp, result.commit);
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
    // The new version is made next to the current one, which the helper only reads: a running
    // plugin's tree is never touched, and a helper killed half-way leaves only `tmp` behind.
    const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + randomSuffix());
    const TransferResult result =
        transfer_.run({"update", url, branch, currentDir.string(), tmp.string()}, timeout, limiter_.stopFlag());
    if (result.outcome == TransferResult::Outcome::Unchanged) {
        removeQuietly(tmp);
        GitResult unchanged;
        unchanged.ok = true;
        unchanged.commit = result.commit;
        return unchanged;
    }
    if (result.outcome != TransferResult::Outcome::Changed) {
        removeQuietly(tmp);
        return failure(describeFailure("git fetch of " + url, result));
    }
    return install(target, tmp, result.commit);
}

} // namespace agent::exec
