#include "ServiceNotify.h"

#ifdef AGENT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace agent {

namespace {

void send(const std::string& message) {
#ifdef AGENT_HAVE_SYSTEMD
    // unset_environment = 0: NOTIFY_SOCKET stays for the later STOPPING=1. Plugins do not see it:
    // the plugin runner gives them an environment of its own.
    sd_notify(0, message.c_str());
#else
    (void)message;
#endif
}

// A status line must stay one line: the protocol separates assignments with newlines.
std::string oneLine(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r') c = ' ';
    return text;
}

} // namespace

void notifyReady(const std::string& status) { send("READY=1\nSTATUS=" + oneLine(status)); }

void notifyStopping() { send("STOPPING=1\nSTATUS=stopping: draining the spools"); }

void notifyStatus(const std::string& status) { send("STATUS=" + oneLine(status)); }

} // namespace agent
