// Response helpers for route handlers.
#include <agent/Routes.h>

#include <Poco/JSON/Object.h>

#include <sstream>

namespace agent {

HttpResponse jsonResponse(int status, const std::string& json) {
    HttpResponse response;
    response.status = status;
    response.body = json;
    return response;
}

HttpResponse errorResponse(int status, const std::string& message) {
    Poco::JSON::Object error;
    error.set("error", message);
    std::ostringstream out;
    error.stringify(out);
    return jsonResponse(status, out.str());
}

} // namespace agent
