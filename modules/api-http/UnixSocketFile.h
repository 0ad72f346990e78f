// The file of a listening unix socket ([api-http] socket, listen = "unix:PATH"): made safely and
// removed only when it is still ours.
//
//   - PATH a symlink: the socket is made at its target (one level, relative to the link's
//     directory) and the link is left alone: systemd-tmpfiles can link /run/monitor-agent.sock into
//     the runtime directory of the agent, which runs unprivileged and cannot write /run;
//   - a socket file there that nobody accepts on (left by a run that was killed) is replaced;
//     one that something accepts on fails the start ("... is in use by another process"); any
//     other file there fails the start too: it is not ours to remove;
//   - the socket gets `mode` before it listens, so no client connects under the umask's mode;
//   - remove() unlinks it only if the file is still the one made here (same device and inode):
//     a second agent that replaced it keeps its socket.
#pragma once

#include <Poco/Net/ServerSocket.h>

#include <string>
#include <sys/types.h>

namespace agent::api {

class UnixSocketFile {
public:
    // Binds and listens at `path`; throws std::runtime_error saying why it cannot.
    Poco::Net::ServerSocket listen(const std::string& path, mode_t mode, int backlog);
    // Unlinks the socket file made by listen(), if it is still that file. Idempotent.
    void remove();
    // Where the socket is: `path`, or the target of the symlink at `path`.
    const std::string& boundPath() const { return bound_; }

private:
    std::string bound_;
    dev_t device_ = 0;
    ino_t inode_ = 0;
    bool made_ = false;
};

// "0660" (octal, at most 0777) to a mode; false when `text` is not one.
bool parseSocketMode(const std::string& text, mode_t& mode);

} // namespace agent::api
