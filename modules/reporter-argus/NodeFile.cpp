#include "NodeFile.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace agent::argus {
namespace {

// node.json is a few hundred bytes; anything this large is not ours.
constexpr std::size_t kMaxNodeFileBytes = 1024 * 1024;

[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw NodeFileError(what + " " + path + ": " + std::strerror(errno));
}

// Closes the descriptor on every path out.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }
    // close() reports errors of delayed writes (NFS), so it is checked, once.
    bool close() {
        const int fd = fd_;
        fd_ = -1;
        return ::close(fd) == 0;
    }

private:
    int fd_;
};

void writeAll(int fd, const std::string& text, const std::string& path) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t written = ::write(fd, text.data() + done, text.size() - done);
        if (written < 0 && errno == EINTR) continue;
        if (written < 0) fail("cannot write", path);
        done += static_cast<std::size_t>(written);
    }
}

void syncDirectory(const std::string& directory) {
    FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) fail("cannot sync directory", directory);
}

std::string directoryOf(const std::string& path) {
    const std::string parent = std::filesystem::path(path).parent_path().string();
    return parent.empty() ? "." : parent;
}

// Temp file in the same directory (rename is atomic only within one file system), then rename.
void writeAtomically(const std::string& path, const std::string& text) {
    const std::string temp = path + ".tmp." + std::to_string(::getpid());
    FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) fail("cannot create", temp);
    try {
        writeAll(fd.get(), text, temp);
        if (::fsync(fd.get()) != 0) fail("cannot sync", temp);
        if (!fd.close()) fail("cannot close", temp);
        if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot rename " + temp + " to", path);
    } catch (const NodeFileError&) {
        ::unlink(temp.c_str());
        throw;
    }
    syncDirectory(directoryOf(path));
}

} // namespace

std::optional<MasterNode> loadNodeFile(const std::string& path, std::string& problem) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno != ENOENT) problem = "cannot read " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    std::string text(kMaxNodeFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxNodeFileBytes) {
        problem = path + ": larger than " + std::to_string(kMaxNodeFileBytes) + " bytes, ignored";
        return std::nullopt;
    }
    try {
        return parseMasterNode(text);
    } catch (const ArgusProtocolError& e) {
        problem = path + ": " + e.what() + ", ignored";
        return std::nullopt;
    }
}

void saveNodeFile(const std::string& path, const MasterNode& node) {
    writeAtomically(path, toJson(node.object, 2) + "\n");
}

void ensureWritableDirectory(const std::string& directory) {
    std::error_code error;
    std::filesystem::create_directories(directory, error);
    if (error) throw NodeFileError("cannot create directory " + directory + ": " + error.message());
    const std::string probe = directory + "/.write-test." + std::to_string(::getpid());
    writeAtomically(probe, "");
    if (::unlink(probe.c_str()) != 0) fail("cannot remove", probe);
}

} // namespace agent::argus
