#include "HostFacts.h"

#include <Poco/Exception.h>
#include <Poco/Net/DatagramSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

namespace agent::argus {
namespace {

std::string firstInterfaceAddress() {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return {};
    std::string found;
    for (const ifaddrs* entry = list; entry != nullptr && found.empty(); entry = entry->ifa_next) {
        if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
        if ((entry->ifa_flags & IFF_UP) == 0 || (entry->ifa_flags & IFF_LOOPBACK) != 0) continue;
        char text[INET_ADDRSTRLEN] = {};
        const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
        if (inet_ntop(AF_INET, &address->sin_addr, text, sizeof text) != nullptr) found = text;
    }
    freeifaddrs(list);
    return found;
}

} // namespace

std::string addressTowards(const std::string& host, unsigned short port) {
    std::string routed;
    try {
        const Poco::Net::SocketAddress master(host, port);
        Poco::Net::DatagramSocket socket(master.family());
        socket.connect(master);
        const Poco::Net::IPAddress local = socket.address().host();
        if (!local.isWildcard() && !local.isLoopback()) return local.toString();
        if (local.isLoopback()) routed = local.toString();
    } catch (const Poco::Exception&) {
        // no route or no name resolution: the master is unreachable for now, fall back below
    }
    // A master on loopback sees 127.0.0.1, which names no host: the host's own address is more
    // useful, when it has one.
    const std::string interface = firstInterfaceAddress();
    return interface.empty() ? routed : interface;
}

unsigned cpuCount() {
    const long count = sysconf(_SC_NPROCESSORS_ONLN);
    return count > 0 ? static_cast<unsigned>(count) : 0;
}

std::uint64_t memoryBytes() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long pageSize = sysconf(_SC_PAGESIZE);
    return pages > 0 && pageSize > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(pageSize) : 0;
}

} // namespace agent::argus
