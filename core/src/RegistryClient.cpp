#include "RegistryClient.h"

#include <agent/Metric.h>

#include <Poco/Exception.h>
#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace agent {
namespace {

constexpr std::size_t kMaxReplyBytes = 64u << 20; // a registry answer larger than this is garbage

std::string scalarText(const Poco::Dynamic::Var& value) {
    if (value.isEmpty()) return {};
    if (value.isArray() || value.isStruct()) throw RegistryError("expected a string or number, got a structure");
    return value.convert<std::string>();
}

std::string readAll(std::istream& in) {
    std::string text;
    char buffer[65536];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
        text.append(buffer, static_cast<std::size_t>(in.gcount()));
        if (text.size() > kMaxReplyBytes) throw RegistryError("reply larger than 64 MiB");
    }
    return text;
}

Poco::Dynamic::Var parseJson(const std::string& text, const std::string& what) {
    try {
        Poco::JSON::Parser parser;
        return parser.parse(text);
    } catch (const Poco::Exception& e) {
        throw RegistryError(what + ": not JSON (" + e.displayText() + ")");
    }
}

// The entries of one namespace: a JSON array of objects whose values are scalars.
std::vector<RegistryEntry> entriesOf(const Poco::Dynamic::Var& data, const std::string& ns,
                                     std::vector<std::string>& skipped) {
    std::vector<RegistryEntry> entries;
    if (data.isEmpty()) return entries;
    if (data.type() != typeid(Poco::JSON::Array::Ptr)) throw RegistryError("resources of " + ns + ": not a list");
    const auto array = data.extract<Poco::JSON::Array::Ptr>();
    for (std::size_t i = 0; i < array->size(); ++i) {
        const Poco::JSON::Object::Ptr object = array->getObject(static_cast<unsigned>(i));
        if (!object) {
            skipped.push_back("resources of " + ns + ": entry " + std::to_string(i) + " is not an object");
            continue;
        }
        RegistryEntry entry;
        try {
            for (const auto& [key, value] : *object) entry[key] = scalarText(value);
        } catch (const RegistryError& e) {
            skipped.push_back("resources of " + ns + ": entry " + std::to_string(i) + ": " + e.what());
            continue;
        }
        entries.push_back(std::move(entry));
    }
    return entries;
}

} // namespace

RegistryClient::RegistryClient(std::string address, std::chrono::seconds timeout)
    : address_(std::move(address)), timeout_(timeout) {
    while (!address_.empty() && address_.back() == '/') address_.pop_back();
}

std::string RegistryClient::call(const std::string& method, const std::string& pathAndQuery, const std::string& body) const {
    const std::string url = address_ + pathAndQuery;
    std::string reply;
    int status = 0;
    try {
        const Poco::URI uri(url);
        if (uri.getScheme() != "http") throw RegistryError(url + ": only http:// and file:// registries are supported");
        Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
        session.setTimeout(Poco::Timespan(timeout_.count(), 0));
        Poco::Net::HTTPRequest request(method, uri.getPathAndQuery(), Poco::Net::HTTPMessage::HTTP_1_1);
        if (!body.empty()) {
            request.setContentType("application/json");
            request.setContentLength(static_cast<std::streamsize>(body.size()));
        }
        session.sendRequest(request) << body;
        Poco::Net::HTTPResponse response;
        std::istream& in = session.receiveResponse(response);
        status = response.getStatus();
        reply = readAll(in);
    } catch (const Poco::Exception& e) {
        throw RegistryError(method + " " + url + ": " + e.displayText());
    }
    if (status != 200) throw RegistryError(method + " " + url + ": HTTP " + std::to_string(status));
    const Poco::Dynamic::Var parsed = parseJson(reply, method + " " + url);
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) throw RegistryError(method + " " + url + ": reply is not an object");
    const auto envelope = parsed.extract<Poco::JSON::Object::Ptr>();
    int envelopeStatus = 0;
    try {
        envelopeStatus = envelope->getValue<int>("httpstatus");
    } catch (const Poco::Exception&) {
        throw RegistryError(method + " " + url + ": reply has no httpstatus");
    }
    if (envelopeStatus != 200) {
        const std::string message = envelope->has("msg") ? envelope->getValue<std::string>("msg") : "";
        throw RegistryError(method + " " + url + ": httpstatus " + std::to_string(envelopeStatus) +
                            (message.empty() ? "" : ": " + message));
    }
    const Poco::Dynamic::Var data = envelope->get("data");
    if (data.isEmpty()) return "null";
    std::ostringstream out;
    Poco::JSON::Stringifier::stringify(data, out);
    return out.str();
}

RegistryAnswer RegistryClient::fetch(const HostIdentity& host, std::vector<std::string>& skipped) const {
    if (address_.rfind("file://", 0) == 0) {
        const std::string path = Poco::URI(address_).getPath();
        std::ifstream in(path, std::ios::binary);
        if (!in) throw RegistryError(address_ + ": cannot read " + path);
        RegistryAnswer answer = fromJson(readAll(in));
        for (auto it = answer.namespaces.begin(); it != answer.namespaces.end();) {
            if (isValidName(it->first, 128)) {
                ++it;
                continue;
            }
            skipped.push_back("namespace \"" + it->first + "\" is not a valid name");
            answer.resources.erase(it->first);
            it = answer.namespaces.erase(it);
        }
        return answer;
    }

    std::string ips;
    for (const std::string& ip : host.ips) ips += (ips.empty() ? "" : ",") + ip;
    Poco::JSON::Object request;
    request.set("hostname", host.hostname);
    request.set("ip", ips);
    std::ostringstream body;
    request.stringify(body);

    RegistryAnswer answer;
    const Poco::Dynamic::Var namespaces = parseJson(call("POST", "/api/v1/agent/ns", body.str()), "namespaces");
    if (!namespaces.isEmpty()) {
        if (namespaces.type() != typeid(Poco::JSON::Object::Ptr)) throw RegistryError("namespaces: data is not an object");
        for (const auto& [ns, id] : *namespaces.extract<Poco::JSON::Object::Ptr>()) {
            if (!isValidName(ns, 128)) {
                skipped.push_back("namespace \"" + ns + "\" is not a valid name");
                continue;
            }
            try {
                answer.namespaces[ns] = scalarText(id);
            } catch (const RegistryError& e) {
                skipped.push_back("namespace " + ns + ": " + e.what());
            }
        }
    }
    for (const auto& [ns, id] : answer.namespaces) {
        const std::string data = call("GET", "/api/v1/agent/resource?ns=" + ns + "&type=collect", "");
        answer.resources[ns] = entriesOf(parseJson(data, "resources of " + ns), ns, skipped);
    }
    return answer;
}

void RegistryClient::report(const HostIdentity& host, const std::string& version) const {
    if (address_.rfind("file://", 0) == 0) return; // nobody to report to
    Poco::JSON::Object request;
    request.set("hostname", host.hostname);
    std::string ips;
    for (const std::string& ip : host.ips) ips += (ips.empty() ? "" : ",") + ip;
    request.set("ip", ips);
    Poco::JSON::Array namespaces;
    for (const std::string& ns : host.namespaces) namespaces.add(ns);
    request.set("ns", namespaces);
    request.set("version", version);
    std::ostringstream body;
    request.stringify(body);
    call("POST", "/api/v1/agent/report", body.str());
}

std::string RegistryClient::toJson(const RegistryAnswer& answer) {
    Poco::JSON::Object root;
    Poco::JSON::Object::Ptr namespaces = new Poco::JSON::Object;
    for (const auto& [ns, id] : answer.namespaces) namespaces->set(ns, id);
    Poco::JSON::Object::Ptr resources = new Poco::JSON::Object;
    for (const auto& [ns, entries] : answer.resources) {
        Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
        for (const RegistryEntry& entry : entries) {
            Poco::JSON::Object::Ptr object = new Poco::JSON::Object;
            for (const auto& [key, value] : entry) object->set(key, value);
            list->add(object);
        }
        resources->set(ns, list);
    }
    root.set("namespaces", namespaces);
    root.set("resources", resources);
    std::ostringstream out;
    root.stringify(out);
    return out.str();
}

RegistryAnswer RegistryClient::fromJson(const std::string& text) {
    const Poco::Dynamic::Var parsed = parseJson(text, "registry file");
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) throw RegistryError("registry file: not an object");
    const auto root = parsed.extract<Poco::JSON::Object::Ptr>();
    RegistryAnswer answer;
    const Poco::Dynamic::Var namespaces = root->get("namespaces");
    if (namespaces.type() == typeid(Poco::JSON::Object::Ptr)) {
        for (const auto& [ns, id] : *namespaces.extract<Poco::JSON::Object::Ptr>()) answer.namespaces[ns] = scalarText(id);
    } else if (namespaces.type() == typeid(Poco::JSON::Array::Ptr)) {
        const auto list = namespaces.extract<Poco::JSON::Array::Ptr>();
        for (std::size_t i = 0; i < list->size(); ++i) answer.namespaces[scalarText(list->get(static_cast<unsigned>(i)))] = "";
    } else if (!namespaces.isEmpty()) {
        throw RegistryError("registry file: namespaces is neither an object nor a list");
    }
    const Poco::Dynamic::Var resources = root->get("resources");
    if (!resources.isEmpty()) {
        if (resources.type() != typeid(Poco::JSON::Object::Ptr)) throw RegistryError("registry file: resources is not an object");
        std::vector<std::string> ignored;
        for (const auto& [ns, list] : *resources.extract<Poco::JSON::Object::Ptr>()) {
            if (answer.namespaces.count(ns) == 0) continue; // resources of a namespace the host is not in
            answer.resources[ns] = entriesOf(list, ns, ignored);
        }
    }
    return answer;
}

void RegistryClient::save(const RegistryAnswer& answer, const std::string& path) {
    const std::string temporary = path + ".tmp";
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        out << toJson(answer);
        if (!out) throw RegistryError("cannot write " + temporary);
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) throw RegistryError("cannot rename " + temporary + " to " + path);
}

std::optional<RegistryAnswer> RegistryClient::load(const std::string& path, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    try {
        return fromJson(readAll(in));
    } catch (const RegistryError& e) {
        error = path + ": " + e.what();
        return std::nullopt;
    }
}

} // namespace agent
