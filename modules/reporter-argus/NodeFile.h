// node.json: the master's node object as last registered, kept in `<root>/<hostname>/` so that a
// restarted agent keeps its node id (and its env/user/instance). Written atomically: a temp file
// in the same directory, fsync, rename, fsync of the directory; a reader sees the old or the new
// file, never a torn one.
#pragma once

#include "ArgusNode.h"

#include <optional>
#include <stdexcept>
#include <string>

namespace agent::argus {

class NodeFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The saved node; nullopt when there is no file. A file that cannot be read or parsed is also
// nullopt, with the reason in `problem` (the reporter then registers as a new node).
std::optional<MasterNode> loadNodeFile(const std::string& path, std::string& problem);

// Throws NodeFileError, with the errno text, when the file cannot be written.
void saveNodeFile(const std::string& path, const MasterNode& node);

// Creates `directory` (and its parents) and proves it writable by writing and removing a file,
// which also holds for root, whom permission bits do not stop. Throws NodeFileError.
void ensureWritableDirectory(const std::string& directory);

} // namespace agent::argus
