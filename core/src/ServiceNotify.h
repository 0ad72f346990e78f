// Tells a service manager how the agent's start and stop go (systemd's Type=notify protocol).
// Without NOTIFY_SOCKET in the environment, or in a build without libsystemd, every call is a
// no-op, so `agent run` behaves the same from a shell, a container or a unit.
#pragma once

#include <string>

namespace agent {

// The modules run and the agent collects: systemd considers the unit started.
void notifyReady(const std::string& status);
// The agent is draining and stopping.
void notifyStopping();
// A one-line status shown by `systemctl status`.
void notifyStatus(const std::string& status);

} // namespace agent
