#include "RegistryFixture.h"

#include <chrono>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <sstream>
#include <thread>

namespace agent::test {
namespace {

std::string envelope(const Poco::Dynamic::Var& data, int status = 200, const std::string& message = "") {
    Poco::JSON::Object reply;
    reply.set("httpstatus", status);
    reply.set("data", data);
    reply.set("msg", message);
    std::ostringstream out;
    reply.stringify(out);
    return out.str();
}

class Handler : public Poco::Net::HTTPRequestHandler {
public:
    explicit Handler(RegistryFixture& fixture) : fixture_(fixture) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
        std::string body;
        Poco::StreamCopier::copyToString(request.stream(), body);
        const RegistryFixture::Reply reply = fixture_.answer(request.getMethod(), request.getURI(), body);
        if (reply.silent) std::this_thread::sleep_for(std::chrono::seconds(3));
        response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
        response.setContentType("application/json");
        response.sendBuffer(reply.body.data(), reply.body.size());
    }

private:
    RegistryFixture& fixture_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit Factory(RegistryFixture& fixture) : fixture_(fixture) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
        return new Handler(fixture_);
    }

private:
    RegistryFixture& fixture_;
};

} // namespace

RegistryFixture::RegistryFixture() {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(4);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket, params);
    server_->start();
}

RegistryFixture::~RegistryFixture() { server_->stopAll(true); }

std::string RegistryFixture::url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

void RegistryFixture::setNamespace(const std::string& ns, const std::string& id, std::vector<Entry> entries) {
    std::lock_guard<std::mutex> lock(mutex_);
    namespaces_[ns] = id;
    entries_[ns] = std::move(entries);
}

void RegistryFixture::removeNamespace(const std::string& ns) {
    std::lock_guard<std::mutex> lock(mutex_);
    namespaces_.erase(ns);
    entries_.erase(ns);
}

void RegistryFixture::setMode(Mode mode) {
    std::lock_guard<std::mutex> lock(mutex_);
    mode_ = mode;
}

std::vector<std::string> RegistryFixture::nsRequests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return nsRequests_;
}

std::vector<std::string> RegistryFixture::reports() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reports_;
}

std::vector<double> RegistryFixture::requestTimes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requestTimes_;
}

int RegistryFixture::requestCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
}

RegistryFixture::Reply RegistryFixture::answer(const std::string& method, const std::string& uri, const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_;
    requestTimes_.push_back(
        static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()) /
        1e6);
    switch (mode_) {
    case Mode::Http500: return {500, "", false};
    case Mode::Garbage: return {200, "<html>proxy error</html>", false};
    case Mode::EnvelopeError: return {200, envelope(Poco::Dynamic::Var(), 500, "registry database down"), false};
    case Mode::Silent: return {200, envelope(Poco::Dynamic::Var()), true};
    case Mode::Normal: break;
    }
    const Poco::URI parsed(uri);
    if (method == "POST" && parsed.getPath() == "/api/v1/agent/ns") {
        nsRequests_.push_back(body);
        Poco::JSON::Object::Ptr data = new Poco::JSON::Object;
        for (const auto& [ns, id] : namespaces_) data->set(ns, id);
        return {200, envelope(data), false};
    }
    if (method == "GET" && parsed.getPath() == "/api/v1/agent/resource") {
        std::string ns;
        std::string type;
        for (const auto& [key, value] : parsed.getQueryParameters()) {
            if (key == "ns") ns = value;
            if (key == "type") type = value;
        }
        Poco::JSON::Array::Ptr data = new Poco::JSON::Array;
        if (type == "collect") {
            for (const Entry& entry : entries_[ns]) {
                Poco::JSON::Object::Ptr object = new Poco::JSON::Object;
                for (const auto& [key, value] : entry) object->set(key, value);
                data->add(object);
            }
        }
        return {200, envelope(data), false};
    }
    if (method == "POST" && parsed.getPath() == "/api/v1/agent/report") {
        reports_.push_back(body);
        return {200, envelope(Poco::Dynamic::Var()), false};
    }
    return {404, envelope(Poco::Dynamic::Var(), 404, "no such route"), false};
}

} // namespace agent::test
