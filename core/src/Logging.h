// The agent's log: a file in logdir rotated by size (Poco's FileChannel), optionally mirrored to
// stderr when the agent runs in the foreground, and its last warnings and errors kept in memory
// (LogRing) for the status page.
#pragma once

#include "LogRing.h"

#include <cstdint>
#include <string>

namespace agent {

struct LogSettings {
    std::string directory;
    std::string level; // Poco level name
    int keepFiles = 5;
    std::int64_t rotateBytes = 100 << 20;
    bool alsoStderr = false;
};

// Sets the root logger's channel and level; creates the directory. Returns the log file path.
std::string setUpLogging(const LogSettings& settings);
// The process's ring of recent warnings and errors; fed once setUpLogging() ran (GET /me/log).
LogRing& logRing();
// Closes the log file; the next message reopens it (after logrotate moved it away: SIGHUP).
void reopenLog();
// Console-only logging, for commands that do not run the agent (check, once, stop, status).
void setUpConsoleLogging(const std::string& level);

} // namespace agent
