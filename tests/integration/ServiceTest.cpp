// `agent run` under a service manager: the systemd readiness protocol (Type=notify). The test
// plays systemd's part: a datagram socket named by NOTIFY_SOCKET that collects what the agent says.
#include "TestSupport.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace agent::test;

namespace {

// A bound AF_UNIX datagram socket, as systemd listens for notifications.
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        path.copy(address.sun_path, sizeof address.sun_path - 1);
        bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    }
    ~NotifySocket() {
        if (fd_ >= 0) close(fd_);
        unlink(path_.c_str());
    }
    bool bound() const { return bound_; }
    // Everything received so far, messages separated by a blank line.
    std::string drain() {
        char buffer[4096];
        for (;;) {
            const ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n <= 0) break;
            received_.append(buffer, static_cast<std::size_t>(n)).append("\n\n");
        }
        return received_;
    }

private:
    std::string path_;
    int fd_ = -1;
    bool bound_ = false;
    std::string received_;
};

} // namespace

TEST(Service, RunTellsTheServiceManagerWhenItIsReadyAndWhenItStops) {
    TempDir dir;
    const std::string config = writeAgentConfig(dir, AGENT_MODULE_DIR, "[\"source-netif\", \"sink-file\"]",
                                                "[output]\ndrain_timeout = 1\n[sink-file]\npath = \"" +
                                                    dir / "metrics.lp" + "\"\n",
                                                "ifaceprefix = [\"lo\"]\n");
    NotifySocket notify(dir / "notify.sock");
    ASSERT_TRUE(notify.bound());
    setenv("NOTIFY_SOCKET", (dir / "notify.sock").c_str(), 1); // inherited by the agent only
    BackgroundProcess agent({AGENT_BINARY, "run", "-f", config}, dir.path());
    unsetenv("NOTIFY_SOCKET");

    ASSERT_TRUE(eventually([&] { return contains(notify.drain(), "READY=1"); }))
        << "no READY=1 from the agent; stderr: " << agent.err();
    EXPECT_TRUE(contains(notify.drain(), "STATUS=collecting: 2 modules (source-netif, sink-file)")) << notify.drain();
    EXPECT_FALSE(contains(notify.drain(), "STOPPING=1"));

    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
    EXPECT_TRUE(contains(notify.drain(), "STOPPING=1")) << notify.drain();
}
