// libFuzzer target: the /proc/net/dev parser of source-netif. It must never throw or crash, and
// every interface it returns has a name that cannot leave /sys/class/net.
#include "NetifCollector.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const agent::netif::ProcNetDev parsed =
        agent::netif::parseProcNetDev(std::string_view(reinterpret_cast<const char*>(data), size));
    for (const agent::netif::InterfaceCounters& iface : parsed.interfaces) {
        if (iface.name.empty() || iface.name == "." || iface.name == ".." || iface.name.find('/') != std::string::npos)
            std::abort();
    }
    return 0;
}
