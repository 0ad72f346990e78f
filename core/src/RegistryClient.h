// The registry ("tree") client, compatible with lodastack/registry (docs/ARCHITECTURE.md §9): which
// namespaces this host belongs to and, per namespace, what to collect. Every reply is the
// envelope {"httpstatus": 200, "data": ..., "msg": ""}. A `file://` address reads one JSON file
// instead: {"namespaces": {"ns": "id", ...}, "resources": {"ns": [{...}, ...]}}.
#pragma once

#include <agent/Context.h>

#include <Poco/Logger.h>

#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace agent {

using RegistryEntry = std::map<std::string, std::string>;

struct RegistryAnswer {
    std::map<std::string, std::string> namespaces;               // namespace -> resource id
    std::map<std::string, std::vector<RegistryEntry>> resources; // namespace -> its "collect" entries

    bool operator==(const RegistryAnswer&) const = default;
};

// The registry could not be asked or answered something unusable; what() says which.
class RegistryError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class RegistryClient {
public:
    RegistryClient(std::string address, std::chrono::seconds timeout);

    // Asks for this host's namespaces, then each namespace's collect entries. Namespaces with
    // invalid names are left out (listed in `skipped`). Throws RegistryError.
    RegistryAnswer fetch(const HostIdentity& host, std::vector<std::string>& skipped) const;
    // POST /api/v1/agent/report: hostname, IPs, namespaces, version. Throws RegistryError.
    void report(const HostIdentity& host, const std::string& version) const;

    // The last good answer, kept in the state dir so a restart with the registry down keeps
    // every plugin running. save() writes a temporary file and renames it.
    static void save(const RegistryAnswer& answer, const std::string& path);
    static std::optional<RegistryAnswer> load(const std::string& path, std::string& error);

    // The JSON forms, shared by the cache, the file:// registry and tests.
    static std::string toJson(const RegistryAnswer& answer);
    static RegistryAnswer fromJson(const std::string& text); // throws RegistryError

private:
    // Sends a request and returns the envelope's `data`, as JSON text. Throws RegistryError.
    std::string call(const std::string& method, const std::string& pathAndQuery, const std::string& body) const;

    std::string address_; // without a trailing slash
    std::chrono::seconds timeout_;
};

} // namespace agent
