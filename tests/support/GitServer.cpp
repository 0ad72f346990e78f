#include "GitServer.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace agent::test {
namespace {

const std::string kGit = "/usr/bin/git";

// Identity and isolation for every git command: no user or system config, fixed author.
const std::map<std::string, std::string> kGitEnv = {
    {"GIT_CONFIG_NOSYSTEM", "1"},         {"GIT_CONFIG_GLOBAL", "/dev/null"},
    {"GIT_AUTHOR_NAME", "Agent Test"},    {"GIT_AUTHOR_EMAIL", "test@example.com"},
    {"GIT_COMMITTER_NAME", "Agent Test"}, {"GIT_COMMITTER_EMAIL", "test@example.com"},
};

int freeLoopbackPort() {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    const int port = socket.address().port();
    socket.close();
    return port;
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    return text;
}

} // namespace

GitServer::GitServer() = default;

GitServer::~GitServer() {
    stopDaemon();
}

std::string GitServer::git(const std::vector<std::string>& args, const std::string& workDir) const {
    std::vector<std::string> argv{kGit};
    argv.insert(argv.end(), args.begin(), args.end());
    const CommandResult result = runCommand(argv, workDir, std::chrono::seconds(60), kGitEnv);
    if (result.exitCode != 0) {
        std::string command;
        for (const std::string& a : argv)
            command += a + " ";
        throw std::runtime_error("git fixture: " + command + "failed (" + std::to_string(result.exitCode) +
                                 "): " + result.err);
    }
    return trimmed(result.out);
}

std::string GitServer::createRepo(const std::string& path, const std::string& script, const std::string& branch) {
    const std::string bare = barePath(path);
    const std::string work = workTree(path);
    std::filesystem::create_directories(std::filesystem::path(bare).parent_path());
    std::filesystem::create_directories(work);
    git({"init", "--quiet", "--bare", bare});
    git({"init", "--quiet", "-b", branch, work});
    writeFile(work + "/plugin", script);
    std::filesystem::permissions(work + "/plugin", std::filesystem::perms(0755));
    git({"add", "plugin"}, work);
    git({"commit", "--quiet", "-m", "plugin"}, work);
    git({"remote", "add", "origin", bare}, work);
    git({"push", "--quiet", "origin", branch}, work);
    // A bare repository's HEAD names the branch clones check out by default.
    git({"symbolic-ref", "HEAD", "refs/heads/" + branch}, bare);
    return head(path, branch);
}

std::string GitServer::commit(const std::string& path, const std::string& file, const std::string& content,
                              const std::string& branch) {
    const std::string work = workTree(path);
    git({"checkout", "--quiet", "-B", branch}, work);
    writeFile(work + "/" + file, content);
    git({"add", file}, work);
    git({"commit", "--quiet", "-m", "change " + file}, work);
    git({"push", "--quiet", "--force", "origin", branch}, work);
    return head(path, branch);
}

std::string GitServer::head(const std::string& path, const std::string& branch) const {
    return git({"rev-parse", "refs/heads/" + branch}, barePath(path));
}

void GitServer::startDaemon() {
    if (daemon_) return;
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = freeLoopbackPort();
        daemon_ = std::make_unique<BackgroundProcess>(
            std::vector<std::string>{kGit, "daemon", "--reuseaddr", "--export-all", "--informative-errors",
                                     "--listen=127.0.0.1", "--port=" + std::to_string(port_),
                                     "--base-path=" + root_.path(), root_.path()},
            logs_.path());
        const bool up = eventually(
            [this] {
                if (!daemon_->running()) return true;
                try {
                    Poco::Net::StreamSocket probe(
                        Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port_)));
                    return true;
                } catch (const Poco::Exception&) {
                    return false;
                }
            },
            std::chrono::seconds(10));
        if (up && daemon_->running()) return;
        daemon_.reset(); // lost the port to someone else: pick another
    }
    throw std::runtime_error("git daemon did not start: " + readFile(logs_ / "process.err"));
}

void GitServer::stopDaemon() {
    if (!daemon_) return;
    daemon_->signal(SIGTERM);
    daemon_->wait(std::chrono::seconds(5)); // the destructor SIGKILLs it if it is still there
    daemon_.reset();
}

std::string GitServer::daemonUrl(const std::string& path) const {
    return "git://127.0.0.1:" + std::to_string(port_) + "/" + path + ".git";
}

int closedLoopbackPort() {
    return freeLoopbackPort();
}

SilentServer::SilentServer()
    : socket_(std::make_unique<Poco::Net::ServerSocket>(Poco::Net::SocketAddress("127.0.0.1", 0), 64)),
      port_(socket_->address().port()) {}

SilentServer::~SilentServer() {
    socket_->close();
}

} // namespace agent::test
