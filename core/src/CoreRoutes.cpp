#include "CoreRoutes.h"

#include "BuildInfo.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cmath>
#include <iomanip>
#include <sstream>

namespace agent {
namespace {

std::string stringify(const Poco::Dynamic::Var& value) {
    std::ostringstream out;
    Poco::JSON::Stringifier::stringify(value, out);
    return out.str();
}

// Label values escape backslash, double quote and newline (Prometheus text format 0.0.4).
std::string label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out.push_back('\\');
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out.push_back(c);
    }
    return out;
}

class MetricsText {
public:
    // One metric family: its HELP and TYPE lines, then its samples.
    void family(const std::string& name, const std::string& type, const std::string& help) {
        out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    }
    void sample(const std::string& name, const std::string& labels, double value) {
        out_ << name;
        if (!labels.empty()) out_ << '{' << labels << '}';
        // Counters pass a million quickly: print them whole, not rounded to six digits.
        if (value == std::floor(value) && std::fabs(value) < 9e15) out_ << ' ' << static_cast<long long>(value) << '\n';
        else out_ << ' ' << std::setprecision(17) << value << '\n';
    }
    std::string text() const { return out_.str(); }

private:
    std::ostringstream out_;
};

} // namespace

std::string prometheusMetrics(ModuleHost& host) {
    MetricsText m;
    const auto& sinks = host.bus().sinks();
    const struct {
        const char* name;
        const char* help;
        std::uint64_t (*read)(const SinkChannel&);
    } counters[] = {
        {"agent_sink_points_in_total", "Points acknowledged into the sink's spool.",
         [](const SinkChannel& s) -> std::uint64_t { return s.counters().in; }},
        {"agent_sink_points_out_total", "Points the sink delivered.",
         [](const SinkChannel& s) -> std::uint64_t { return s.counters().out; }},
        {"agent_sink_points_retried_total", "Points of writes the sink answered with retry.",
         [](const SinkChannel& s) -> std::uint64_t { return s.counters().retried; }},
        {"agent_sink_points_dropped_total", "Points lost: spool full, rejected by the peer, or not appendable.",
         [](const SinkChannel& s) -> std::uint64_t { return s.counters().dropped; }},
    };
    for (const auto& counter : counters) {
        m.family(counter.name, "counter", counter.help);
        for (const SinkChannelPtr& sink : sinks)
            m.sample(counter.name, "sink=\"" + label(sink->name()) + "\"", static_cast<double>(counter.read(*sink)));
    }
    m.family("agent_spool_bytes", "gauge", "Bytes of the sink's spool on disk.");
    for (const SinkChannelPtr& sink : sinks)
        m.sample("agent_spool_bytes", "sink=\"" + label(sink->name()) + "\"", static_cast<double>(sink->spoolStats().bytes));
    m.family("agent_spool_pending_bytes", "gauge", "Bytes of the sink's spool not delivered yet.");
    for (const SinkChannelPtr& sink : sinks)
        m.sample("agent_spool_pending_bytes", "sink=\"" + label(sink->name()) + "\"",
                 static_cast<double>(sink->spoolStats().pendingBytes));

    const Poco::JSON::Object::Ptr registry = host.registry().health();
    m.family("agent_registry_polls_total", "counter", "Registry polls, failed ones included.");
    m.sample("agent_registry_polls_total", "", registry->getValue<double>("polls"));
    m.family("agent_registry_poll_failures_total", "counter", "Registry polls that failed.");
    m.sample("agent_registry_poll_failures_total", "", registry->getValue<double>("failures"));

    m.family("agent_plugin_runs_total", "counter", "Plugin runs by result.");
    const Poco::JSON::Object::Ptr modules = host.status();
    for (const auto& [name, entry] : *modules) {
        const auto object = entry.extract<Poco::JSON::Object::Ptr>();
        if (!object->has("health")) continue;
        const auto health = object->getObject("health");
        if (!health || !health->has("runs_by_result")) continue;
        for (const auto& [result, count] : *health->getObject("runs_by_result"))
            m.sample("agent_plugin_runs_total", "module=\"" + label(name) + "\",result=\"" + label(result) + "\"",
                     count.convert<double>());
    }

    m.family("agent_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (const auto& [key, count] : host.routes().requestCounts())
        m.sample("agent_http_requests_total", "route=\"" + label(key.first) + "\",status=\"" + std::to_string(key.second) + "\"",
                 static_cast<double>(count));
    return m.text();
}

void registerCoreRoutes(ModuleHost& host, std::chrono::system_clock::time_point started) {
    RouteTable& routes = host.routes();
    routes.add("/healthz", {"GET", "HEAD"}, [](const HttpRequest&) { return jsonResponse(200, R"({"status":"ok"})"); });
    routes.add("/me/ns", {"GET"}, [&host](const HttpRequest&) {
        Poco::JSON::Array namespaces;
        for (const std::string& ns : host.identity().namespaces) namespaces.add(ns);
        return jsonResponse(200, stringify(namespaces));
    });
    routes.add("/me/status", {"GET"}, [&host, started](const HttpRequest&) {
        Poco::JSON::Object status;
        const HostIdentity identity = host.identity();
        status.set("version", AGENT_VERSION);
        status.set("commit", AGENT_GIT_COMMIT);
        status.set("hostname", identity.hostname);
        Poco::JSON::Array::Ptr namespaces = new Poco::JSON::Array;
        for (const std::string& ns : identity.namespaces) namespaces->add(ns);
        status.set("namespaces", namespaces);
        status.set("uptime_seconds",
                   std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - started).count());
        status.set("registry", host.registry().health());
        status.set("modules", host.status());
        std::ostringstream out;
        status.stringify(out);
        return jsonResponse(200, out.str());
    });
    routes.addSlow("/update", {"GET", "POST"}, [&host](const HttpRequest&) {
        std::string error;
        if (host.registry().pollNow(error)) return jsonResponse(200, R"({"updated":true})");
        return errorResponse(503, "registry poll failed: " + error);
    });
    routes.add("/metrics", {"GET"}, [&host](const HttpRequest&) {
        HttpResponse response;
        response.contentType = "text/plain; version=0.0.4";
        response.body = prometheusMetrics(host);
        return response;
    });
}

void registerHistoryRoutes(RouteTable& routes, const HistorySampler& history, const LogRing& log) {
    routes.add("/me/history", {"GET"}, [&history](const HttpRequest&) { return jsonResponse(200, history.json()); });
    routes.add("/me/log", {"GET"}, [&log](const HttpRequest&) { return jsonResponse(200, log.json()); });
}

} // namespace agent
