#include "HttpClient.h"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>

namespace agent::test {

int freePort() {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    return socket.address().port();
}

HttpReply httpCall(Poco::Net::HTTPClientSession& session, const std::string& method, const std::string& uri,
                   const std::string& body, const std::string& token) {
    Poco::Net::HTTPRequest request(method, uri, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(true);
    if (!token.empty()) request.set("Authorization", "Bearer " + token);
    if (!body.empty() || method == Poco::Net::HTTPRequest::HTTP_POST)
        request.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    HttpReply reply;
    reply.status = response.getStatus();
    Poco::StreamCopier::copyToString(in, reply.body);
    reply.retryAfter = response.get("Retry-After", "");
    return reply;
}

HttpReply httpCall(int port, const std::string& method, const std::string& uri, const std::string& body,
                   const std::string& token) {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(30, 0));
    return httpCall(session, method, uri, body, token);
}

HttpReply httpCallUnix(const std::string& path, const std::string& method, const std::string& uri,
                       const std::string& body, const std::string& token) {
    Poco::Net::StreamSocket socket(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, path));
    Poco::Net::HTTPClientSession session(socket);
    session.setTimeout(Poco::Timespan(30, 0));
    return httpCall(session, method, uri, body, token);
}

Poco::JSON::Object::Ptr getJson(int port, const std::string& uri) {
    const HttpReply reply = httpCall(port, "GET", uri);
    return Poco::JSON::Parser().parse(reply.body).extract<Poco::JSON::Object::Ptr>();
}

} // namespace agent::test
