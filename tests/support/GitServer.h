// Git servers for tests, made with the git CLI: bare repositories in a TempDir whose `release`
// branch holds an executable `plugin`, served over file:// and, once started, by `git daemon`
// on a loopback port picked free (stopped by the destructor). Also the two broken peers a
// client must survive: a closed port, and a listener that accepts and never answers.
#pragma once

#include "TestSupport.h"

#include <memory>
#include <string>

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
    // Head of `branch` in the bare repository.
    std::string head(const std::string& path, const std::string& branch = "release") const;

    std::string barePath(const std::string& path) const { return root_.path() + "/" + path + ".git"; }
    std::string fileUrl(const std::string& path) const { return "file://" + barePath(path); }

    // Starts `git daemon` (every repository exported, read-only) and waits until it accepts.
    void startDaemon();
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

} // namespace agent::test
