// Git servers for tests, made with the git CLI: bare repositories in a TempDir whose `release`
// branch holds an executable `plugin`, served over file:// and, once started, by `git daemon`
// on a loopback port picked free (stopped by the destructor), or by a real OpenSSH sshd with
// its own config, host key and client key (SshGitServer). Also the broken peers a client must
// survive: a closed port, a listener that accepts and never answers, and one that trickles.
#pragma once

#include "TestSupport.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace Poco::Net {
class ServerSocket;
}

namespace agent::test {

class GitServer {
public:
    GitServer();
    ~GitServer(); // stops the daemon
    GitServer(const GitServer&) = delete;
    GitServer& operator=(const GitServer&) = delete;

    // Creates the bare repository `<root>/<path>.git` (path like "group/project") whose branch
    // `branch` holds an executable `plugin` with `script` as its text. Returns the commit id.
    std::string createRepo(const std::string& path, const std::string& script = "#!/bin/sh\necho '[]'\n",
                           const std::string& branch = "release");
    // Commits `file` with `content` on `branch` of repository `path` and pushes it; returns the commit id.
    std::string commit(const std::string& path, const std::string& file, const std::string& content,
                       const std::string& branch = "release");
    // Points the bare repository's HEAD at `ref` (which need not exist, as on a server whose
    // default branch was deleted or never pushed).
    void setHead(const std::string& path, const std::string& ref);
    // Head of `branch` in the bare repository.
    std::string head(const std::string& path, const std::string& branch = "release") const;

    std::string barePath(const std::string& path) const { return root_.path() + "/" + path + ".git"; }
    std::string fileUrl(const std::string& path) const { return "file://" + barePath(path); }
    // The [agent] git template ("%s" = group/project) that maps every repository to its file:// URL.
    std::string fileUrlTemplate() const { return "file://" + root_.path() + "/%s.git"; }

    // Starts `git daemon` (every repository exported, read-only) and waits until it accepts.
    // `extraArgs` go before the base path (e.g. --verbose, which logs every connection to
    // daemonLog(), or --max-connections=N).
    void startDaemon(const std::vector<std::string>& extraArgs = {});
    // The daemon's stderr: with --verbose, "[pid] Connection from ..." per connection.
    std::string daemonLog() const { return logs_ / "process.err"; }
    void stopDaemon();
    int port() const { return port_; }
    std::string daemonUrl(const std::string& path) const;

private:
    std::string git(const std::vector<std::string>& args, const std::string& workDir = {}) const;
    std::string workTree(const std::string& path) const { return work_.path() + "/" + path; }

    TempDir root_; // bare repositories
    TempDir work_; // working clones the fixture commits in
    TempDir logs_;
    std::unique_ptr<BackgroundProcess> daemon_;
    int port_ = 0;
};

// A loopback port nothing listens on (bound once, then closed): connections are refused.
int closedLoopbackPort();

// A loopback listener that completes TCP handshakes (the kernel's backlog) and never reads or
// writes: a git server that hangs.
class SilentServer {
public:
    SilentServer();
    ~SilentServer();
    SilentServer(const SilentServer&) = delete;
    SilentServer& operator=(const SilentServer&) = delete;
    int port() const { return port_; }

private:
    std::unique_ptr<Poco::Net::ServerSocket> socket_;
    int port_ = 0;
};

// A loopback listener that accepts and then sends one byte every `interval`, forever: a transfer
// that never ends although data keeps arriving (per-read timeouts never fire).
class TricklingServer {
public:
    explicit TricklingServer(std::chrono::milliseconds interval = std::chrono::milliseconds(200));
    ~TricklingServer();
    TricklingServer(const TricklingServer&) = delete;
    TricklingServer& operator=(const TricklingServer&) = delete;
    int port() const { return port_; }

private:
    void serve();
    std::unique_ptr<Poco::Net::ServerSocket> socket_;
    int port_ = 0;
    std::chrono::milliseconds interval_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

// OpenSSH's sshd on a loopback port, started by the test with a config file, host key and port of
// its own, letting one test user (kSshUser, created when missing) in with a throwaway key; the
// user's commands are the git commands a client asks for (git-upload-pack). Needs root.
class SshGitServer {
public:
    static constexpr const char* kSshUser = "agent-ssh-test";
    // Why an sshd cannot run here (not root, no sshd, no ssh-keygen), or empty.
    static std::string unavailableReason();

    SshGitServer();
    ~SshGitServer(); // stops sshd
    SshGitServer(const SshGitServer&) = delete;
    SshGitServer& operator=(const SshGitServer&) = delete;

    int port() const { return port_; }
    // ssh://agent-ssh-test@127.0.0.1:<port><absolute path of the bare repository>
    std::string url(const GitServer& server, const std::string& path) const;
    // A HOME whose .ssh holds the client key (id_ed25519) and a known_hosts entry for this sshd.
    std::string home() const { return home_.path(); }
    // Makes `server`'s repositories readable by the ssh user.
    void share(const GitServer& server, const std::string& path) const;
    // SIGSTOP / SIGCONT: stopped, sshd's socket still completes TCP handshakes (the kernel's
    // backlog) but nothing answers: a server that accepts and never speaks.
    void freeze();
    void thaw();

private:
    TempDir dir_;  // config, host key, authorized_keys, logs
    TempDir home_; // the client's HOME
    std::unique_ptr<BackgroundProcess> sshd_;
    int port_ = 0;
};

} // namespace agent::test
