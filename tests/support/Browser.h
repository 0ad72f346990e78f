// A real browser for tests: Debian's headless `chromium`, driven over the Chrome DevTools Protocol
// (a WebSocket to its page target, one command at a time). Enough to load a page, read its DOM
// with JavaScript, click like a user and save a screenshot.
#pragma once

#include "TestSupport.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/JSON/Object.h>

#include <chrono>
#include <memory>
#include <string>

namespace Poco::Net {
class HTTPClientSession;
class WebSocket;
} // namespace Poco::Net

namespace agent::test {

class Browser {
public:
    // The chromium binary ($AGENT_TEST_CHROMIUM, else `chromium` or `chromium-browser` on PATH), or
    // "" when there is none.
    static std::string findChromium();

    // Starts chromium headless with a fresh profile and connects to its page. Throws
    // std::runtime_error (naming the binary and its stderr) when it cannot.
    Browser(int width = 1280, int height = 900);
    ~Browser(); // closes the browser, then kills what is left
    Browser(const Browser&) = delete;
    Browser& operator=(const Browser&) = delete;

    // Loads `url` and waits until the document is complete.
    void navigate(const std::string& url);
    // The value of a JavaScript expression (awaited when it is a promise). Throws the page's
    // exception text when it throws.
    Poco::Dynamic::Var evaluate(const std::string& expression);
    // Polls `expression` until it is true; false after `timeout`.
    bool waitFor(const std::string& expression, std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Scrolls the first element matching `selector` into view and clicks its centre with the
    // mouse, as a user would. Throws when nothing matches.
    void click(const std::string& selector);
    // Presses and releases Enter on the focused element, as a keyboard user would.
    void pressEnter();
    // A PNG of the whole page (beyond the viewport) written to `path`.
    void screenshot(const std::string& path);
    // One DevTools command; its "result" object. Throws on a protocol error.
    Poco::JSON::Object::Ptr command(const std::string& method, const Poco::JSON::Object& params = Poco::JSON::Object());

    // What chromium wrote to stderr so far (for failure messages).
    std::string log() const;

private:
    TempDir profile_;
    std::unique_ptr<BackgroundProcess> process_;
    std::unique_ptr<Poco::Net::HTTPClientSession> session_;
    std::unique_ptr<Poco::Net::WebSocket> socket_;
    int nextId_ = 1;
};

} // namespace agent::test
