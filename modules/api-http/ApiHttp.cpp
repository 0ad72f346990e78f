// api-http: serves the agent's HTTP API on [agent] listen (host:port, or unix:/path.sock) and,
// when [api-http] socket is set, on that unix socket too (the Go agent served
// /var/run/monitor-agent.sock next to its TCP port), with Poco's HTTPServer: one server per
// address, one handler factory, the same routes and token rule. It serves the routes the core and
// modules registered and adds /post, the push endpoint. Bounded: worker threads, queued
// connections, request time, body size; an optional bearer token guards every route but /healthz
// and the status page (StatusPage.h).
#include "PostBody.h"
#include "StatusPage.h"
#include "UnixSocketFile.h"

#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Module.h>
#include <agent/Routes.h>

#include <Poco/ClassLibrary.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace {

const agent::ConfigSchema kSchema = {
    {"listen", agent::ConfigType::String, "127.0.0.1:1232", "host:port or unix:/path.sock", "agent.listen"},
    {"token", agent::ConfigType::String, "", "bearer token required on every route but /healthz and the status page; \"\" = none"},
    {"max_body_bytes", agent::ConfigType::Integer, "10485760", "larger request bodies get 413"},
    {"threads", agent::ConfigType::Integer, "8", "worker threads"},
    {"queue", agent::ConfigType::Integer, "1024", "connections waiting for a worker; more are refused"},
    {"timeout", agent::ConfigType::Float, "10", "seconds a request may take to arrive"},
    {"socket", agent::ConfigType::String, "", "a unix socket served as well as listen; \"\" = none"},
    {"socket_mode", agent::ConfigType::String, "0666", "octal mode of the unix sockets (as the loopback port: anyone local)"},
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
        socket_ = config.getPath("socket");
        // listen may be "" when a socket is served: an agent reachable on its socket only.
        if (listen_.empty()) {
            if (socket_.empty()) errors.add(config, "listen", "must be host:port or unix:/path.sock (or set socket)");
        } else if (listen_.rfind("unix:", 0) == 0) {
            if (listen_.substr(5) == socket_) errors.add(config, "socket", "is the socket listen already serves");
        } else {
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
        if (const std::string mode = config.getString("socket_mode"); !agent::api::parseSocketMode(mode, socketMode_))
            errors.add(config, "socket_mode", "\"" + mode + "\" is not an octal mode between 0 and 0777 (e.g. \"0660\")");
        errors.throwIfAny();
    }

    void start(agent::Context& context) override {
        context_ = &context;
        context.routes().add("/post", {"POST"}, [this](const agent::HttpRequest& request) { return post(request); });
        agent::api::registerStatusPage(context.routes());
        publishHealth();

        Poco::Net::HTTPRequestHandlerFactory::Ptr factory =
            new HandlerFactory(context.routes(), token_, static_cast<std::size_t>(maxBody_));
        std::vector<std::string> served;
        try {
            if (listen_.rfind("unix:", 0) == 0) {
                serve(factory, listenUnix(listen_.substr(5)));
                served.push_back(listen_);
            } else if (!listen_.empty()) {
                Poco::Net::ServerSocket socket;
                socket.bind(Poco::Net::SocketAddress(listen_), true);
                socket.listen(static_cast<int>(queue_));
                serve(factory, socket);
                served.push_back(listen_);
            }
            if (!socket_.empty()) {
                serve(factory, listenUnix(socket_));
                served.push_back("unix:" + socketFiles_.back().boundPath());
            }
        } catch (...) {
            stop(); // what was started so far; the core reports the error
            throw;
        }
        std::string where;
        for (const std::string& address : served) where += (where.empty() ? "" : " and ") + address;
        context.logger().information("serving the HTTP API on %s%s", where,
                                     std::string(token_.empty() ? "" : " (bearer token required)"));
    }

    void stop() override {
        for (auto& server : servers_) server->stopAll(true);
        servers_.clear();
        pools_.clear(); // after the servers that use them
        for (auto& file : socketFiles_) file.remove();
        socketFiles_.clear();
    }

private:
    // A unix socket at `path`, by the rules of UnixSocketFile (stale sockets replaced, symlinks
    // followed, socket_mode applied); the file is removed at stop.
    Poco::Net::ServerSocket listenUnix(const std::string& path) {
        socketFiles_.emplace_back();
        return socketFiles_.back().listen(path, socketMode_, static_cast<int>(queue_));
    }

    void serve(const Poco::Net::HTTPRequestHandlerFactory::Ptr& factory, const Poco::Net::ServerSocket& socket) {
        Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(static_cast<int>(threads_));
        params->setMaxQueued(static_cast<int>(queue_));
        params->setKeepAlive(true);
        params->setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout_ * 1e6)));
        // A pool of its own per server: Poco's default pool (16 threads) would be shared by both
        // servers and cap `threads`.
        pools_.push_back(std::make_unique<Poco::ThreadPool>(1, static_cast<int>(threads_)));
        servers_.push_back(std::make_unique<Poco::Net::HTTPServer>(factory, *pools_.back(), socket, params));
        servers_.back()->start();
    }

    // The health shown by /me/status: how many posted entries had no value (null) and were left out.
    void publishHealth() {
        Poco::JSON::Object::Ptr health = new Poco::JSON::Object;
        health->set("entries_skipped_null", static_cast<Poco::UInt64>(skippedNull_));
        context_->setHealth(health);
    }

    void countSkipped(std::size_t skipped) {
        if (skipped == 0) return;
        // One lock for the count and the hand-over, so a smaller count never replaces a larger one.
        std::lock_guard<std::mutex> lock(healthMutex_);
        skippedNull_ += skipped;
        publishHealth();
    }

    // POST /post?ns=NS: the whole body is checked before anything is taken; 200 only once the
    // points are in every sink's spool, 503 when a spool is full or there is no sink at all.
    // Entries without a value (null) are left out and counted: 200 {"accepted": N, "skipped": M}
    // ("skipped" only when M > 0, so the answer of a body without nulls is as before).
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
        // Before rejected, which is set too: retrying will not help, so no Retry-After.
        if (result.noSink) return agent::errorResponse(503, "no sink is loaded: this agent stores no metrics");
        if (result.rejected) {
            agent::HttpResponse response = agent::errorResponse(503, "spool full; retry later");
            response.headers.emplace_back("Retry-After", "5");
            return response;
        }
        countSkipped(parsed.skipped);
        std::string answer = "{\"accepted\":" + std::to_string(points);
        if (parsed.skipped > 0) answer += ",\"skipped\":" + std::to_string(parsed.skipped);
        return agent::jsonResponse(200, answer + "}");
    }

    std::string listen_;
    std::string token_;
    std::int64_t maxBody_ = 10 << 20;
    std::int64_t threads_ = 8;
    std::int64_t queue_ = 1024;
    double timeout_ = 10;
    std::string socket_;
    mode_t socketMode_ = 0666;
    agent::Context* context_ = nullptr;
    std::vector<std::unique_ptr<Poco::ThreadPool>> pools_;
    std::vector<std::unique_ptr<Poco::Net::HTTPServer>> servers_;
    std::vector<agent::api::UnixSocketFile> socketFiles_;
    std::mutex healthMutex_;
    std::uint64_t skippedNull_ = 0; // guarded by healthMutex_
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(ApiHttp, "api-http")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
