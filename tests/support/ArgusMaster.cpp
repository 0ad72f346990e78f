#include "ArgusMaster.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace agent::test {
namespace {

constexpr const char* kNodesPath = "/api/v1/master/nodes";
constexpr const char* kStatusSuffix = "/status";

std::string stringify(const Poco::Dynamic::Var& value) {
    std::ostringstream out;
    Poco::JSON::Stringifier::condense(value, out);
    return out.str();
}

ArgusMaster::Reply errorReply(int status, const std::string& message) {
    Poco::JSON::Object reply;
    reply.set("error", message);
    return {status, stringify(reply)};
}

Poco::JSON::Object::Ptr parseObject(const std::string& text) {
    try {
        Poco::JSON::Parser parser;
        const Poco::Dynamic::Var value = parser.parse(text);
        if (value.type() == typeid(Poco::JSON::Object::Ptr)) return value.extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception&) {
        // not JSON: the caller answers 400
    }
    return nullptr;
}

std::string field(const Poco::JSON::Object::Ptr& object, const std::string& key) {
    return object && object->has(key) && object->get(key).isString() ? object->getValue<std::string>(key) : "";
}

ArgusMaster::Node nodeOf(const Poco::JSON::Object::Ptr& object) {
    ArgusMaster::Node node;
    node.id = field(object, "id");
    node.name = field(object, "name");
    const Poco::JSON::Object::Ptr meta = object->getObject("meta_data");
    node.ip = field(meta, "ip");
    node.env = field(meta, "env");
    node.user = field(meta, "user");
    node.instance = field(meta, "instance");
    node.lastReport = field(object, "last_report");
    node.health = object->getObject("health");
    node.registrations = object->has("registrations") ? object->getValue<int>("registrations") : 0;
    node.reports = object->has("reports") ? object->getValue<int>("reports") : 0;
    return node;
}

// A deep copy, so that what a reply or a test holds never changes under it.
Poco::JSON::Object::Ptr copyOf(const Poco::JSON::Object::Ptr& object) { return parseObject(stringify(object)); }

class Handler : public Poco::Net::HTTPRequestHandler {
public:
    explicit Handler(ArgusMaster& master) : master_(master) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
        std::string body;
        Poco::StreamCopier::copyToString(request.stream(), body);
        const ArgusMaster::Reply reply = master_.answer(request.getMethod(), request.getURI(), body);
        response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
        response.setContentType("application/json");
        response.sendBuffer(reply.body.data(), reply.body.size());
    }

private:
    ArgusMaster& master_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit Factory(ArgusMaster& master) : master_(master) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
        return new Handler(master_);
    }

private:
    ArgusMaster& master_;
};

} // namespace

ArgusMaster::ArgusMaster(const std::string& host, unsigned short port) : host_(host), port_(port) { listen(); }

ArgusMaster::~ArgusMaster() { goDown(); }

void ArgusMaster::listen() {
    Poco::Net::ServerSocket socket;
    socket.bind(Poco::Net::SocketAddress(host_, port_), true); // reuse: coming back on the same port
    socket.listen();
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(4);
    params->setKeepAlive(false);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket, params);
    server_->start();
    port_ = server_->port();
}

std::string ArgusMaster::endpoint() const { return host_ + ":" + std::to_string(port_); }
std::string ArgusMaster::url() const { return "http://" + endpoint(); }

void ArgusMaster::setMode(Mode mode) {
    std::lock_guard<std::mutex> lock(mutex_);
    mode_ = mode;
}

void ArgusMaster::forget(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    nodes_.erase(id);
    registrationsById_.erase(id);
    reportsById_.erase(id);
}

// server_ is only touched by the thread that owns the fixture (not under mutex_: stopping waits
// for the handlers, which take mutex_).
void ArgusMaster::goDown() {
    if (!server_) return;
    server_->stopAll(true);
    server_.reset();
}

void ArgusMaster::comeUp() {
    if (!server_) listen();
}

void ArgusMaster::setStateFile(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    stateFile_ = path;
    writeStateLocked();
}

std::vector<ArgusMaster::Node> ArgusMaster::nodes() const { return nodesFromState(stateJson()); }

std::optional<ArgusMaster::Node> ArgusMaster::node(const std::string& id) const {
    for (Node& node : nodes()) {
        if (node.id == id) return node;
    }
    return std::nullopt;
}

std::vector<std::string> ArgusMaster::registrationBodies() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return registrationBodies_;
}

int ArgusMaster::reportCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reports_;
}

std::string ArgusMaster::stateJson() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stateJsonLocked();
}

std::string ArgusMaster::stateJsonLocked() const {
    Poco::JSON::Array::Ptr nodes = new Poco::JSON::Array;
    for (const auto& [id, object] : nodes_) {
        Poco::JSON::Object::Ptr entry = copyOf(object);
        entry->set("registrations", registrationsById_.count(id) ? registrationsById_.at(id) : 0);
        entry->set("reports", reportsById_.count(id) ? reportsById_.at(id) : 0);
        nodes->add(entry);
    }
    Poco::JSON::Array::Ptr registrations = new Poco::JSON::Array;
    for (const std::string& body : registrationBodies_) registrations->add(body);
    Poco::JSON::Object state;
    state.set("nodes", nodes);
    state.set("registrations", registrations);
    state.set("reports", reports_);
    return stringify(state);
}

std::vector<ArgusMaster::Node> ArgusMaster::nodesFromState(const std::string& json) {
    std::vector<Node> nodes;
    const Poco::JSON::Object::Ptr state = parseObject(json);
    if (!state || !state->getArray("nodes")) return nodes;
    const Poco::JSON::Array::Ptr list = state->getArray("nodes");
    for (std::size_t i = 0; i < list->size(); ++i) nodes.push_back(nodeOf(list->getObject(static_cast<unsigned>(i))));
    return nodes;
}

void ArgusMaster::writeStateLocked() const {
    if (stateFile_.empty()) return;
    const std::string temp = stateFile_ + ".tmp";
    {
        std::ofstream out(temp, std::ios::trunc);
        out << stateJsonLocked();
        if (!out) throw std::runtime_error("cannot write " + temp);
    }
    if (std::rename(temp.c_str(), stateFile_.c_str()) != 0) throw std::runtime_error("cannot rename " + temp);
}

ArgusMaster::Reply ArgusMaster::answer(const std::string& method, const std::string& uri, const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string path = Poco::URI(uri).getPath();
    Reply reply = errorReply(404, "no such route: " + method + " " + path);
    if (mode_ == Mode::Http500) {
        reply = errorReply(500, "master database unavailable");
    } else if (mode_ == Mode::Garbage) {
        reply = {200, "<html>502 Bad Gateway</html>"};
    } else if (method == "POST" && path == kNodesPath) {
        reply = registerNode(body);
    } else if (method == "GET" && path == kNodesPath) {
        Poco::JSON::Array list;
        for (const auto& [id, object] : nodes_) list.add(object);
        reply = {200, stringify(list)};
    } else if (path.rfind(std::string(kNodesPath) + "/", 0) == 0) {
        std::string rest = path.substr(std::string(kNodesPath).size() + 1);
        const bool status = rest.size() > std::string(kStatusSuffix).size() &&
                            rest.compare(rest.size() - std::string(kStatusSuffix).size(), std::string::npos, kStatusSuffix) == 0;
        if (status) rest.resize(rest.size() - std::string(kStatusSuffix).size());
        if (method == "PUT" && status) {
            reply = reportStatus(rest, body);
        } else if (method == "GET" && !status) {
            reply = nodes_.count(rest) ? Reply{200, stringify(nodes_.at(rest))} : errorReply(404, "node not found");
        }
    }
    writeStateLocked();
    return reply;
}

// A known id keeps its node; an unknown one is taken as given (a node the master forgot comes
// back with its id); no id: the node of the same name if there is one, else a new id.
ArgusMaster::Reply ArgusMaster::registerNode(const std::string& body) {
    registrationBodies_.push_back(body);
    const Poco::JSON::Object::Ptr request = parseObject(body);
    if (!request) return errorReply(400, "body is not a JSON object");
    const std::string name = field(request, "name");
    if (name.empty() || field(request, "type").empty() || !request->getObject("meta_data"))
        return errorReply(400, "name, type and meta_data are required");
    std::string id = field(request, "id");
    if (id.empty()) {
        for (const auto& [known, object] : nodes_) {
            if (field(object, "name") == name) id = known;
        }
    }
    const bool created = id.empty() || nodes_.count(id) == 0;
    if (id.empty()) id = "A" + std::to_string(nextId_++);
    Poco::JSON::Object::Ptr node = created ? Poco::JSON::Object::Ptr(new Poco::JSON::Object) : nodes_.at(id);
    node->set("id", id);
    node->set("name", name);
    node->set("type", field(request, "type"));
    node->set("version", field(request, "version"));
    node->set("meta_data", copyOf(request->getObject("meta_data")));
    node->set("status", "online");
    nodes_[id] = node;
    ++registrationsById_[id];
    Poco::JSON::Object::Ptr answer = copyOf(node);
    if (mode_ == Mode::NoId) answer->remove("id");
    return {created ? 201 : 200, stringify(answer)};
}

ArgusMaster::Reply ArgusMaster::reportStatus(const std::string& id, const std::string& body) {
    const auto found = nodes_.find(id);
    if (found == nodes_.end()) return errorReply(404, "node not found");
    const Poco::JSON::Object::Ptr request = parseObject(body);
    if (!request || field(request, "timestamp").empty() || !request->getObject("health"))
        return errorReply(400, "timestamp and health are required");
    found->second->set("health", copyOf(request->getObject("health")));
    found->second->set("last_report", field(request, "timestamp"));
    ++reportsById_[id];
    ++reports_;
    return {200, stringify(found->second)};
}

} // namespace agent::test
