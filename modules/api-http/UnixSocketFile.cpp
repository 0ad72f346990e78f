#include "UnixSocketFile.h"

#include <Poco/Exception.h>
#include <Poco/Net/SocketAddress.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace agent::api {
namespace {

std::string systemError(const std::string& what, int error) { return what + ": " + std::strerror(error); }

// The symlink at `path` followed one level (relative targets are relative to the link's
// directory); `path` itself when it is no symlink.
std::string resolveLink(const std::string& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0 || !S_ISLNK(info.st_mode)) return path;
    std::string target(PATH_MAX, '\0');
    const ssize_t length = ::readlink(path.c_str(), target.data(), target.size());
    if (length < 0) throw std::runtime_error(systemError("cannot read the symlink " + path, errno));
    target.resize(static_cast<std::size_t>(length));
    if (target.empty() || target.front() == '/') return target;
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? target : path.substr(0, slash + 1) + target;
}

// True when something accepts connections on the unix socket at `path`.
bool someoneAccepts(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) throw std::runtime_error("socket path too long: " + path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(systemError("cannot make a socket", errno));
    const int result = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const int error = errno;
    ::close(fd);
    if (result == 0) return true;
    // ECONNREFUSED: a socket file without a listener, left by a run that did not stop cleanly.
    if (error == ECONNREFUSED || error == ENOENT) return false;
    throw std::runtime_error(systemError("cannot tell whether the socket " + path + " is in use", error));
}

// Makes room for the socket at `path`: removes a stale socket, refuses anything else.
void clearStaleSocket(const std::string& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) {
        if (errno == ENOENT) return;
        throw std::runtime_error(systemError("cannot look at " + path, errno));
    }
    if (!S_ISSOCK(info.st_mode)) throw std::runtime_error(path + " exists and is not a socket; not removing it");
    if (someoneAccepts(path)) throw std::runtime_error("the socket " + path + " is in use by another process");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw std::runtime_error(systemError("cannot remove the stale socket " + path, errno));
}

} // namespace

Poco::Net::ServerSocket UnixSocketFile::listen(const std::string& path, mode_t mode, int backlog) {
    bound_ = resolveLink(path);
    clearStaleSocket(bound_);
    Poco::Net::ServerSocket socket;
    try {
        socket.bind(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, bound_));
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("cannot bind the socket " + bound_ + ": " + e.displayText());
    }
    struct stat info {};
    if (::stat(bound_.c_str(), &info) != 0) throw std::runtime_error(systemError("cannot look at " + bound_, errno));
    made_ = true;
    device_ = info.st_dev;
    inode_ = info.st_ino;
    if (::chmod(bound_.c_str(), mode) != 0) {
        const int error = errno;
        remove();
        throw std::runtime_error(systemError("cannot set the mode of the socket " + bound_, error));
    }
    socket.listen(backlog);
    return socket;
}

void UnixSocketFile::remove() {
    if (!made_) return;
    made_ = false;
    struct stat info {};
    if (::lstat(bound_.c_str(), &info) == 0 && S_ISSOCK(info.st_mode) && info.st_dev == device_ && info.st_ino == inode_)
        ::unlink(bound_.c_str());
}

bool parseSocketMode(const std::string& text, mode_t& mode) {
    if (text.empty() || text.size() > 4) return false;
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '7') return false;
        value = value * 8 + static_cast<unsigned>(c - '0');
    }
    if (value > 0777) return false;
    mode = static_cast<mode_t>(value);
    return true;
}

} // namespace agent::api
