// The host's identity: its name (or the configured override) and its non-loopback addresses.
#pragma once

#include <agent/Context.h>

#include <string>
#include <vector>

namespace agent {

std::string systemHostname();
// IPv4 and global IPv6 addresses of the interfaces that are up, loopback and link-local excluded.
std::vector<std::string> nonLoopbackAddresses();

HostIdentity detectIdentity(const std::string& hostnameOverride, const std::vector<std::string>& namespaces);

} // namespace agent
