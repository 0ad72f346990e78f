// Reading the files of /proc and /sys, which every collector does every round.
#pragma once

#include <string>

namespace agent {

// Reads a whole file with read(2): files under /proc and /sys report a size of 0, so nothing that
// trusts the size works, and the errno of a failed read matters (EINVAL from a link speed file
// means "unknown", not "broken"). `content` is cleared first and reused, so a steady file costs no
// allocation round after round. Returns 0 on success, else the errno.
int readWholeFile(const std::string& path, std::string& content);

} // namespace agent
