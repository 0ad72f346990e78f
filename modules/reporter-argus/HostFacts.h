// What the registration tells the master about this host besides its identity: the address it
// reaches the master from, CPU count and memory. Reads the kernel's view only (routing table,
// interfaces, sysconf); sends nothing.
#pragma once

#include <cstdint>
#include <string>

namespace agent::argus {

// The local address the kernel picks to reach host:port (a UDP "connect" sends no packet), which
// is the address the master sees on a multi-homed host. When that is loopback or unknown, the
// first IPv4 address of an interface that is up and not loopback; else loopback, or "".
std::string addressTowards(const std::string& host, unsigned short port);

unsigned cpuCount();
std::uint64_t memoryBytes();

} // namespace agent::argus
