#include "MasterClient.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/URI.h>

#include <istream>

namespace agent::argus {
namespace {

constexpr const char* kNodesPath = "/api/v1/master/nodes";
// A node object is small; a master (or a proxy in front of it) answering more is not read further.
constexpr std::size_t kMaxReplyBytes = 1024 * 1024;
// How much of an error answer goes into the log line.
constexpr std::size_t kErrorExcerptBytes = 200;

std::string readCapped(std::istream& in) {
    std::string body(kMaxReplyBytes, '\0');
    in.read(body.data(), static_cast<std::streamsize>(body.size()));
    body.resize(static_cast<std::size_t>(in.gcount()));
    return body;
}

std::string excerpt(const std::string& body) {
    std::string text = body.substr(0, kErrorExcerptBytes);
    for (char& c : text) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    return body.size() > kErrorExcerptBytes ? text + "..." : text;
}

MasterOutcome outcomeOf(int status) {
    if (status >= 200 && status < 300) return MasterOutcome::Ok;
    if (status == Poco::Net::HTTPResponse::HTTP_NOT_FOUND) return MasterOutcome::NotFound;
    return MasterOutcome::Failed;
}

} // namespace

MasterClient::MasterClient(std::string baseUrl, Poco::Timespan timeout)
    : baseUrl_(std::move(baseUrl)), timeout_(timeout) {
    const Poco::URI uri(baseUrl_);
    host_ = uri.getHost();
    port_ = uri.getPort();
    pathPrefix_ = uri.getPath();
}

MasterReply MasterClient::registerNode(const std::string& body) {
    return send(Poco::Net::HTTPRequest::HTTP_POST, kNodesPath, body);
}

MasterReply MasterClient::reportStatus(const std::string& nodeId, const std::string& body) {
    std::string encodedId;
    Poco::URI::encode(nodeId, "/?#%&+", encodedId); // the id is one path segment, whatever it holds
    return send(Poco::Net::HTTPRequest::HTTP_PUT, std::string(kNodesPath) + "/" + encodedId + "/status", body);
}

MasterReply MasterClient::send(const std::string& method, const std::string& path, const std::string& body) {
    MasterReply reply;
    try {
        Poco::Net::HTTPClientSession session(host_, port_);
        session.setTimeout(timeout_, timeout_, timeout_);
        Poco::Net::HTTPRequest request(method, pathPrefix_ + path, Poco::Net::HTTPMessage::HTTP_1_1);
        request.setContentType("application/json");
        request.setContentLength(static_cast<std::streamsize>(body.size()));
        request.set("Accept", "application/json");
        session.sendRequest(request) << body;
        Poco::Net::HTTPResponse response;
        std::istream& in = session.receiveResponse(response);
        reply.status = static_cast<int>(response.getStatus());
        reply.body = readCapped(in);
        reply.outcome = outcomeOf(reply.status);
        if (reply.outcome != MasterOutcome::Ok)
            reply.error = "HTTP " + std::to_string(reply.status) + ": " + excerpt(reply.body);
    } catch (const Poco::Exception& e) {
        reply.outcome = MasterOutcome::Failed;
        reply.error = e.displayText();
    }
    return reply;
}

} // namespace agent::argus
