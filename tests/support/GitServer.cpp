#include "GitServer.h"

#include "HttpClient.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>

#include <csignal>
#include <filesystem>
#include <pwd.h>
#include <stdexcept>
#include <string_view>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace agent::test {
namespace {

const std::string kGit = "/usr/bin/git";

// Identity and isolation for every git command: no user or system config, fixed author.
const std::map<std::string, std::string> kGitEnv = {
    {"GIT_CONFIG_NOSYSTEM", "1"},         {"GIT_CONFIG_GLOBAL", "/dev/null"},
    {"GIT_AUTHOR_NAME", "Agent Test"},    {"GIT_AUTHOR_EMAIL", "test@example.com"},
    {"GIT_COMMITTER_NAME", "Agent Test"}, {"GIT_COMMITTER_EMAIL", "test@example.com"},
};

// Waits until `process` accepts on `port` (true) or has exited (false).
bool acceptsConnections(BackgroundProcess& process, int port) {
    const bool up = eventually(
        [&] {
            if (!process.running()) return true;
            try {
                Poco::Net::StreamSocket probe(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port)));
                return true;
            } catch (const Poco::Exception&) {
                return false;
            }
        },
        std::chrono::seconds(10));
    return up && process.running();
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

void GitServer::setHead(const std::string& path, const std::string& ref) {
    git({"symbolic-ref", "HEAD", ref}, barePath(path));
}

std::string GitServer::head(const std::string& path, const std::string& branch) const {
    return git({"rev-parse", "refs/heads/" + branch}, barePath(path));
}

void GitServer::startDaemon(const std::vector<std::string>& extraArgs) {
    if (daemon_) return;
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = freePort();
        std::vector<std::string> argv = {kGit, "daemon", "--reuseaddr", "--export-all", "--informative-errors",
                                         "--listen=127.0.0.1", "--port=" + std::to_string(port_)};
        argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
        argv.insert(argv.end(), {"--base-path=" + root_.path(), root_.path()});
        daemon_ = std::make_unique<BackgroundProcess>(argv, logs_.path());
        if (acceptsConnections(*daemon_, port_)) return;
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
    return freePort();
}

SilentServer::SilentServer()
    : socket_(std::make_unique<Poco::Net::ServerSocket>(Poco::Net::SocketAddress("127.0.0.1", 0), 64)),
      port_(socket_->address().port()) {}

SilentServer::~SilentServer() {
    socket_->close();
}

TricklingServer::TricklingServer(std::chrono::milliseconds interval)
    : socket_(std::make_unique<Poco::Net::ServerSocket>(Poco::Net::SocketAddress("127.0.0.1", 0), 64)),
      port_(socket_->address().port()), interval_(interval), thread_([this] { serve(); }) {}

TricklingServer::~TricklingServer() {
    stop_ = true;
    thread_.join();
    socket_->close();
}

void TricklingServer::serve() {
    // A pkt-line length that promises a long line, then its payload a byte at a time.
    static constexpr std::string_view kHeader = "fff0";
    std::vector<std::pair<Poco::Net::StreamSocket, std::size_t>> clients; // with the bytes sent
    while (!stop_) {
        if (socket_->poll(Poco::Timespan(0, 10000), Poco::Net::Socket::SELECT_READ))
            clients.emplace_back(socket_->acceptConnection(), 0);
        for (auto it = clients.begin(); it != clients.end();) {
            const char byte = it->second < kHeader.size() ? kHeader[it->second] : 'a';
            try {
                it->first.sendBytes(&byte, 1);
                ++it->second;
                ++it;
            } catch (const Poco::Exception&) {
                it = clients.erase(it); // the client gave up
            }
        }
        std::this_thread::sleep_for(interval_);
    }
}

// --- SshGitServer ----------------------------------------------------------------------------

namespace {
const std::string kSshd = "/usr/sbin/sshd";
const std::string kSshKeygen = "/usr/bin/ssh-keygen";

std::string keygen(const std::string& file) {
    const CommandResult made = runCommand({kSshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "agent-test", "-f", file});
    if (made.exitCode != 0) throw std::runtime_error("ssh-keygen failed: " + made.err);
    return trimmed(readFile(file + ".pub"));
}
} // namespace

std::string SshGitServer::unavailableReason() {
    if (geteuid() != 0) return "sshd with a test user needs root";
    if (::access(kSshd.c_str(), X_OK) != 0) return kSshd + " is missing (Debian package openssh-server)";
    if (::access(kSshKeygen.c_str(), X_OK) != 0) return kSshKeygen + " is missing (Debian package openssh-client)";
    return {};
}

SshGitServer::SshGitServer() {
    if (const std::string reason = unavailableReason(); !reason.empty()) throw std::runtime_error(reason);
    if (getpwnam(kSshUser) == nullptr) {
        const CommandResult added = runCommand({"/usr/sbin/useradd", "--system", "--no-create-home", "--home-dir", "/",
                                                "--shell", "/bin/sh", kSshUser});
        if (added.exitCode != 0 && getpwnam(kSshUser) == nullptr)
            throw std::runtime_error(std::string("cannot create the ssh test user: ") + added.err);
    }
    // useradd locks the account ("!"), and sshd without PAM lets no locked account in: "*" is
    // unlocked but has no password, so only the key opens it.
    const CommandResult unlocked = runCommand({"/usr/sbin/usermod", "--password", "*", kSshUser});
    if (unlocked.exitCode != 0) throw std::runtime_error("cannot unlock the ssh test user: " + unlocked.err);
    // sshd's privilege separation directory.
    std::filesystem::create_directories("/run/sshd");
    ::chmod("/run/sshd", 0755);

    const std::string hostKey = keygen(dir_ / "host_key");
    std::filesystem::create_directories(home_ / ".ssh");
    const std::string clientKey = keygen(home_ / ".ssh/id_ed25519");
    writeFile(dir_ / "authorized_keys", clientKey + "\n");
    // The host key without its comment: "<type> <base64>".
    const std::string hostKeyText = hostKey.substr(0, hostKey.rfind(' '));

    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = freePort();
        writeFile(home_ / ".ssh/known_hosts", "[127.0.0.1]:" + std::to_string(port_) + " " + hostKeyText + "\n");
        // StrictModes off: the key files live in a TempDir. The git served is told that the
        // root-owned test repositories are safe (git refuses a repository of another owner).
        writeFile(dir_ / "sshd_config", "Port " + std::to_string(port_) +
                                            "\n"
                                            "ListenAddress 127.0.0.1\n"
                                            "HostKey " + (dir_ / "host_key") + "\n"
                                            "PidFile " + (dir_ / "sshd.pid") + "\n"
                                            "AuthorizedKeysFile " + (dir_ / "authorized_keys") + "\n"
                                            "AllowUsers " + kSshUser + "\n"
                                            "PasswordAuthentication no\n"
                                            "KbdInteractiveAuthentication no\n"
                                            "UsePAM no\n"
                                            "StrictModes no\n"
                                            "PermitRootLogin no\n"
                                            "SetEnv GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory "
                                            "GIT_CONFIG_VALUE_0=*\n");
        sshd_ = std::make_unique<BackgroundProcess>(
            std::vector<std::string>{kSshd, "-D", "-e", "-f", dir_ / "sshd_config"}, dir_.path());
        if (acceptsConnections(*sshd_, port_)) return;
        sshd_.reset(); // lost the port, or a bad config: the log says which
    }
    throw std::runtime_error("sshd did not start: " + readFile(dir_ / "process.err"));
}

SshGitServer::~SshGitServer() {
    if (!sshd_) return;
    sshd_->signal(SIGCONT);
    sshd_->signal(SIGTERM);
    sshd_->wait(std::chrono::seconds(5));
}

std::string SshGitServer::url(const GitServer& server, const std::string& path) const {
    return std::string("ssh://") + kSshUser + "@127.0.0.1:" + std::to_string(port_) + server.barePath(path);
}

void SshGitServer::share(const GitServer& server, const std::string& path) const {
    // Every directory from the repository up to / must be searchable by the ssh user.
    std::filesystem::path at = server.barePath(path);
    runCommand({"/bin/chmod", "-R", "a+rX", at.string()});
    for (at = at.parent_path(); at.has_relative_path(); at = at.parent_path()) {
        struct stat st {};
        if (::stat(at.c_str(), &st) == 0) ::chmod(at.c_str(), (st.st_mode & 07777) | 0055);
    }
}

void SshGitServer::freeze() {
    sshd_->signal(SIGSTOP);
}

void SshGitServer::thaw() {
    sshd_->signal(SIGCONT);
}

} // namespace agent::test
