#include "HostInfo.h"

#include <Poco/Net/NetworkInterface.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <unistd.h>

namespace agent {

std::string systemHostname() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0)
        throw std::system_error(errno, std::generic_category(), "gethostname");
    return name;
}

std::vector<std::string> nonLoopbackAddresses() {
    std::vector<std::string> addresses;
    for (const Poco::Net::NetworkInterface& iface : Poco::Net::NetworkInterface::list(true, true)) {
        for (const auto& entry : iface.addressList()) {
            const Poco::Net::IPAddress& ip = entry.get<Poco::Net::NetworkInterface::IP_ADDRESS>();
            if (ip.isLoopback() || ip.isLinkLocal() || ip.isWildcard()) continue;
            const std::string text = ip.toString();
            if (std::find(addresses.begin(), addresses.end(), text) == addresses.end()) addresses.push_back(text);
        }
    }
    return addresses;
}

HostIdentity detectIdentity(const std::string& hostnameOverride, const std::vector<std::string>& namespaces) {
    HostIdentity identity;
    identity.hostname = hostnameOverride.empty() ? systemHostname() : hostnameOverride;
    identity.ips = nonLoopbackAddresses();
    identity.namespaces = namespaces;
    return identity;
}

} // namespace agent
