// HTTP from a test to a running agent (or any loopback server): a free port to give it, one
// request at a time over TCP or a unix socket, and JSON answers parsed.
#pragma once

#include <Poco/JSON/Object.h>

#include <string>

namespace Poco::Net {
class HTTPClientSession;
}

namespace agent::test {

// A loopback TCP port that was free when asked (bound once, then closed).
int freePort();

struct HttpReply {
    int status = 0;
    std::string body;
    std::string retryAfter; // the Retry-After header, "" when absent
};

// One request on `session` (kept alive when the server allows); `token` adds
// "Authorization: Bearer <token>". Throws Poco::Exception when the connection fails.
HttpReply httpCall(Poco::Net::HTTPClientSession& session, const std::string& method, const std::string& uri,
                   const std::string& body = "", const std::string& token = "");
// The same on a fresh session to 127.0.0.1:`port`, or to the unix socket at `path`; 30 s timeout.
HttpReply httpCall(int port, const std::string& method, const std::string& uri, const std::string& body = "",
                   const std::string& token = "");
HttpReply httpCallUnix(const std::string& path, const std::string& method, const std::string& uri,
                       const std::string& body = "", const std::string& token = "");

// GET `uri` from 127.0.0.1:`port`: the parsed JSON object (throws when the answer is not one).
Poco::JSON::Object::Ptr getJson(int port, const std::string& uri);

} // namespace agent::test
