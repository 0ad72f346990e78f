// api-http: serves the agent's HTTP API on [agent] listen (host:port, or unix:/path.sock) with
// Poco's HTTPServer. It serves the routes the core and modules registered and adds /post, the
// push endpoint. Bounded: worker threads, queued connections, request time, body size; an
// optional bearer token guards every route but /healthz and the status page (StatusPage.h).
#include "PostBody.h"
#include "StatusPage.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Module.h>
#include <agent/Routes.h>

#include <Poco/ClassLibrary.h>
#include <Poco/File.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>

#include <memory>

namespace {

const agent::ConfigSchema kSchema = {
    {"listen", agent::ConfigType::String, "127.0.0.1:1232", "host:port or unix:/path.sock", "agent.listen"},
    {"token", agent::ConfigType::String, "", "bearer token required on every route but /healthz and the status page; \"\" = none"},
    {"max_body_bytes", agent::ConfigType::Integer, "10485760", "larger request bodies get 413"},
    {"threads", agent::ConfigType::Integer, "8", "worker threads"},
    {"queue", agent::ConfigType::Integer, "1024", "connections waiting for a worker; more are refused"},
    {"timeout", agent::ConfigType::Float, "10", "seconds a request may take to arrive"},
};

void send(Poco::Net::HTTPServerResponse& out, const agent::HttpResponse& response) {
    out.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status));
    out.setContentType(response.contentType);
    for (const auto& [name, value] : response.headers) out.set(name, value);
    out.setContentLength(static_cast<std::streamsize>(response.body.size()));
    out.sendBuffer(response.body.data(), response.body.size());
}

class RequestHandler : public Poco::Net::HTTPRequestHandler {
public:
    RequestHandler(agent::RouteRegistry& routes, const std::string& token, std::size_t maxBody)
        : routes_(routes), token_(token), maxBody_(maxBody) {}

    void handleRequest(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) override {
        agent::HttpRequest request;
        request.method = in.getMethod();
        try {
            const Poco::URI uri(in.getURI());
            request.path = uri.getPath();
            for (const auto& [key, value] : uri.getQueryParameters()) request.query[key] = value;
        } catch (const Poco::Exception& e) {
            send(out, agent::errorResponse(400, "bad request URI: " + e.displayText()));
            return;
        }
        // The status page's files hold no data: served without the token, so the page can ask for it.
        if (!token_.empty() && request.path != "/healthz" && !agent::api::isStatusPagePath(request.path) &&
            in.get("Authorization", "") != "Bearer " + token_) {
            agent::HttpResponse response = agent::errorResponse(401, "a bearer token is required");
            response.headers.emplace_back("WWW-Authenticate", "Bearer");
            send(out, response);
            return;
        }
        if (in.hasContentLength() && in.getContentLength64() > static_cast<Poco::Int64>(maxBody_)) {
            out.setKeepAlive(false); // the unread body must not be taken for the next request
            send(out, agent::errorResponse(413, "body larger than " + std::to_string(maxBody_) + " bytes"));
            return;
        }
        std::istream& body = in.stream();
        char buffer[65536];
        while (body.read(buffer, sizeof buffer) || body.gcount() > 0) {
            request.body.append(buffer, static_cast<std::size_t>(body.gcount()));
            if (request.body.size() > maxBody_) {
                out.setKeepAlive(false);
                send(out, agent::errorResponse(413, "body larger than " + std::to_string(maxBody_) + " bytes"));
                return;
            }
        }
        send(out, routes_.handle(request));
    }

private:
    agent::RouteRegistry& routes_;
    const std::string& token_;
    const std::size_t maxBody_;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    HandlerFactory(agent::RouteRegistry& routes, const std::string& token, std::size_t maxBody)
        : routes_(routes), token_(token), maxBody_(maxBody) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
        return new RequestHandler(routes_, token_, maxBody_);
    }

private:
    agent::RouteRegistry& routes_;
    const std::string& token_;
    const std::size_t maxBody_;
};

class ApiHttp : public agent::Module {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }
    // A Server: the core starts it after, and stops it before, every module whose routes it serves.
    agent::ModuleDescription describe() const override {
        std::vector<std::string> routes = agent::api::statusPageRoutes(); // GET / (StatusPage.h)
        routes.push_back("/post");
        return {static_cast<agent::Roles>(agent::Role::Server), routes, 1};
    }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        listen_ = config.getString("listen");
        token_ = config.getString("token");
        maxBody_ = config.getInt("max_body_bytes");
        threads_ = config.getInt("threads");
        queue_ = config.getInt("queue");
        timeout_ = config.getDouble("timeout");
        if (listen_.empty()) errors.add(config, "listen", "must be host:port or unix:/path.sock");
        else if (listen_.rfind("unix:", 0) != 0) {
            try {
                Poco::Net::SocketAddress address(listen_);
                (void)address;
            } catch (const Poco::Exception& e) {
                errors.add(config, "listen", "\"" + listen_ + "\" is not host:port (" + e.displayText() + ")");
            }
        }
        if (maxBody_ < 1024) errors.add(config, "max_body_bytes", "must be at least 1024");
        if (threads_ < 1 || threads_ > 256) errors.add(config, "threads", "must be between 1 and 256");
        if (queue_ < 1) errors.add(config, "queue", "must be at least 1");
        if (timeout_ <= 0) errors.add(config, "timeout", "must be positive");
        errors.throwIfAny();
    }

    void start(agent::Context& context) override {
        context_ = &context;
        context.routes().add("/post", {"POST"}, [this](const agent::HttpRequest& request) { return post(request); });
        agent::api::registerStatusPage(context.routes());

        Poco::Net::ServerSocket socket;
        if (listen_.rfind("unix:", 0) == 0) {
            const std::string path = listen_.substr(5);
            if (Poco::File(path).exists()) Poco::File(path).remove(); // left by a previous run
            socket.bind(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, path));
            socket.listen(static_cast<int>(queue_));
        } else {
            socket.bind(Poco::Net::SocketAddress(listen_), true);
            socket.listen(static_cast<int>(queue_));
        }
        Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(static_cast<int>(threads_));
        params->setMaxQueued(static_cast<int>(queue_));
        params->setKeepAlive(true);
        params->setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout_ * 1e6)));
        server_ = std::make_unique<Poco::Net::HTTPServer>(
            new HandlerFactory(context.routes(), token_, static_cast<std::size_t>(maxBody_)), socket, params);
        server_->start();
        context.logger().information("serving the HTTP API on %s%s", listen_,
                                     std::string(token_.empty() ? "" : " (bearer token required)"));
    }

    void stop() override {
        if (server_) server_->stopAll(true);
    }

private:
    // POST /post?ns=NS: the whole body is checked before anything is taken; 200 only once the
    // points are in every sink's spool, 503 when a spool is full.
    agent::HttpResponse post(const agent::HttpRequest& request) {
        std::string ns;
        if (auto it = request.query.find("ns"); it != request.query.end()) {
            ns = it->second;
        } else {
            const std::vector<std::string> namespaces = context_->identity().namespaces;
            if (namespaces.size() != 1)
                return agent::errorResponse(400, "ns is required: this host has " + std::to_string(namespaces.size()) +
                                                     " namespaces");
            ns = namespaces.front();
        }
        if (!agent::isValidName(ns, 128))
            return agent::errorResponse(400, "ns \"" + ns.substr(0, 140) + "\" is not a valid namespace ([0-9A-Za-z._-]+, at most 128 characters)");
        agent::api::PostParseResult parsed = agent::api::parsePostBody(request.body, ns);
        if (!parsed.ok) return agent::errorResponse(400, parsed.error);
        const std::size_t points = parsed.metrics.size();
        const agent::PublishResult result =
            context_->bus().publish(std::move(parsed.metrics), agent::OverflowPolicy::RejectWhenFull);
        if (result.rejected) {
            agent::HttpResponse response = agent::errorResponse(503, "spool full; retry later");
            response.headers.emplace_back("Retry-After", "5");
            return response;
        }
        return agent::jsonResponse(200, "{\"accepted\":" + std::to_string(points) + "}");
    }

    std::string listen_;
    std::string token_;
    std::int64_t maxBody_ = 10 << 20;
    std::int64_t threads_ = 8;
    std::int64_t queue_ = 1024;
    double timeout_ = 10;
    agent::Context* context_ = nullptr;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(ApiHttp, "api-http")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
