#include "Browser.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Buffer.h>
#include <Poco/Environment.h>
#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/Path.h>
#include <Poco/StreamCopier.h>
#include <Poco/StringTokenizer.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace agent::test {
namespace {

// Chromium's start can take seconds on a loaded machine; a page command rarely more than one.
constexpr std::chrono::seconds kStartTimeout{60};
constexpr int kCommandTimeoutSeconds = 60;

std::string httpGet(int port, const std::string& path) {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path, Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::string body;
    Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
    return body;
}

} // namespace

std::string Browser::findChromium() {
    const std::string chosen = Poco::Environment::get("AGENT_TEST_CHROMIUM", "");
    if (!chosen.empty()) return Poco::File(chosen).exists() ? chosen : "";
    const Poco::StringTokenizer path(Poco::Environment::get("PATH", "/usr/bin:/bin"), ":", Poco::StringTokenizer::TOK_IGNORE_EMPTY);
    for (const char* name : {"chromium", "chromium-browser"})
        for (const std::string& dir : path)
            if (Poco::File candidate(dir + "/" + name); candidate.exists() && candidate.canExecute()) return candidate.path();
    return "";
}

Browser::Browser(int width, int height) {
    const std::string binary = findChromium();
    if (binary.empty())
        throw std::runtime_error("no chromium found on PATH (install the Debian package `chromium`: scripts/deps.sh does)");
    // Root needs --no-sandbox; --disable-dev-shm-usage keeps it working where /dev/shm is small
    // (containers, build roots). Port 0: chromium picks a free port and writes it to
    // DevToolsActivePort in the profile, so parallel tests never race for one.
    process_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                 "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                 "--mute-audio", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1",
                                 "--remote-debugging-port=0", "--user-data-dir=" + profile_ / "profile",
                                 "--window-size=" + std::to_string(width) + "," + std::to_string(height), "about:blank"},
        profile_.path());
    const std::string portFile = profile_ / "profile/DevToolsActivePort";
    if (!eventually([&] { return readFile(portFile).find('\n') != std::string::npos || !process_->running(); }, kStartTimeout) ||
        !process_->running())
        throw std::runtime_error(binary + " did not start its DevTools server: " + log());
    const int port = std::stoi(readFile(portFile));

    // The page target chromium opened for about:blank.
    std::string socketPath;
    eventually([&] {
        const auto targets = Poco::JSON::Parser().parse(httpGet(port, "/json/list")).extract<Poco::JSON::Array::Ptr>();
        for (std::size_t i = 0; i < targets->size(); ++i) {
            const auto target = targets->getObject(static_cast<unsigned>(i));
            if (target->getValue<std::string>("type") != "page") continue;
            const std::string url = target->getValue<std::string>("webSocketDebuggerUrl");
            socketPath = url.substr(url.find('/', std::string("ws://").size()));
            return true;
        }
        return false;
    }, kStartTimeout);
    if (socketPath.empty()) throw std::runtime_error("chromium has no page target: " + log());

    session_ = std::make_unique<Poco::Net::HTTPClientSession>("127.0.0.1", static_cast<Poco::UInt16>(port));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, socketPath, Poco::Net::HTTPMessage::HTTP_1_1);
    Poco::Net::HTTPResponse response;
    socket_ = std::make_unique<Poco::Net::WebSocket>(*session_, request, response);
    socket_->setReceiveTimeout(Poco::Timespan(kCommandTimeoutSeconds, 0));
    Poco::JSON::Object metrics;
    metrics.set("width", width);
    metrics.set("height", height);
    metrics.set("deviceScaleFactor", 1);
    metrics.set("mobile", false);
    command("Emulation.setDeviceMetricsOverride", metrics);
    command("Page.enable");
}

Browser::~Browser() {
    try {
        if (socket_) {
            // Closing the browser from inside ends its helper processes too; a signal is the fallback.
            Poco::JSON::Object close;
            close.set("id", nextId_++);
            close.set("method", "Browser.close");
            std::ostringstream text;
            close.stringify(text);
            socket_->sendFrame(text.str().data(), static_cast<int>(text.str().size()));
        }
    } catch (const std::exception&) {
    }
    if (process_ && process_->wait(std::chrono::seconds(10)) < 0) {
        process_->signal(SIGTERM);
        process_->wait(std::chrono::seconds(10));
    }
}

std::string Browser::log() const { return process_ ? process_->err() : std::string(); }

Poco::JSON::Object::Ptr Browser::command(const std::string& method, const Poco::JSON::Object& params) {
    const int id = nextId_++;
    Poco::JSON::Object message;
    message.set("id", id);
    message.set("method", method);
    message.set("params", params);
    std::ostringstream text;
    message.stringify(text);
    const std::string request = text.str();
    socket_->sendFrame(request.data(), static_cast<int>(request.size()));
    for (;;) {
        // Answers and events arrive on the same socket; events are skipped. A large answer (a
        // screenshot) may come in several frames.
        Poco::Buffer<char> buffer(0);
        int flags = 0;
        do {
            if (socket_->receiveFrame(buffer, flags) <= 0 && (flags & Poco::Net::WebSocket::FRAME_OP_BITMASK) == 0)
                throw std::runtime_error("chromium closed the DevTools connection during " + method + ": " + log());
        } while ((flags & Poco::Net::WebSocket::FRAME_FLAG_FIN) == 0);
        if ((flags & Poco::Net::WebSocket::FRAME_OP_BITMASK) == Poco::Net::WebSocket::FRAME_OP_CLOSE)
            throw std::runtime_error("chromium closed the DevTools connection during " + method);
        const auto answer = Poco::JSON::Parser().parse(std::string(buffer.begin(), buffer.size())).extract<Poco::JSON::Object::Ptr>();
        if (!answer->has("id") || answer->getValue<int>("id") != id) continue;
        if (answer->has("error")) {
            std::ostringstream error;
            answer->getObject("error")->stringify(error);
            throw std::runtime_error(method + " failed: " + error.str());
        }
        return answer->has("result") ? answer->getObject("result") : Poco::JSON::Object::Ptr(new Poco::JSON::Object);
    }
}

Poco::Dynamic::Var Browser::evaluate(const std::string& expression) {
    Poco::JSON::Object params;
    params.set("expression", expression);
    params.set("returnByValue", true);
    params.set("awaitPromise", true);
    const auto result = command("Runtime.evaluate", params);
    if (result->has("exceptionDetails")) {
        const auto details = result->getObject("exceptionDetails");
        std::string text = details->optValue<std::string>("text", "exception");
        if (details->has("exception")) text += " " + details->getObject("exception")->optValue<std::string>("description", "");
        throw std::runtime_error("JavaScript `" + expression + "` threw: " + text);
    }
    const auto value = result->getObject("result");
    return value->has("value") ? value->get("value") : Poco::Dynamic::Var();
}

bool Browser::waitFor(const std::string& expression, std::chrono::milliseconds timeout) {
    return eventually([&] {
        const Poco::Dynamic::Var value = evaluate("!!(" + expression + ")");
        return !value.isEmpty() && value.convert<bool>();
    }, timeout);
}

void Browser::navigate(const std::string& url) {
    Poco::JSON::Object params;
    params.set("url", url);
    const auto result = command("Page.navigate", params);
    if (result->has("errorText")) throw std::runtime_error("cannot load " + url + ": " + result->getValue<std::string>("errorText"));
    if (!waitFor("document.readyState === 'complete' && location.href === " + [&] {
            std::ostringstream quoted;
            Poco::JSON::Stringifier::stringify(Poco::Dynamic::Var(url), quoted);
            return quoted.str();
        }()))
        throw std::runtime_error("the page " + url + " did not finish loading");
}

void Browser::click(const std::string& selector) {
    std::ostringstream quoted;
    Poco::JSON::Stringifier::stringify(Poco::Dynamic::Var(selector), quoted);
    const auto box = evaluate("(() => { const e = document.querySelector(" + quoted.str() +
                              "); if (!e) return null; e.scrollIntoView({block: 'center'});"
                              " const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()");
    if (box.isEmpty()) throw std::runtime_error("nothing on the page matches " + selector);
    const auto point = box.extract<Poco::JSON::Array::Ptr>();
    for (const char* type : {"mouseMoved", "mousePressed", "mouseReleased"}) {
        Poco::JSON::Object params;
        params.set("type", type);
        params.set("x", point->getElement<double>(0));
        params.set("y", point->getElement<double>(1));
        if (std::string(type) != "mouseMoved") {
            params.set("button", "left");
            params.set("clickCount", 1);
        }
        command("Input.dispatchMouseEvent", params);
    }
}

void Browser::pressEnter() {
    for (const char* type : {"keyDown", "keyUp"}) {
        Poco::JSON::Object params;
        params.set("type", type);
        params.set("key", "Enter");
        params.set("code", "Enter");
        params.set("windowsVirtualKeyCode", 13);
        params.set("nativeVirtualKeyCode", 13);
        if (std::string(type) == "keyDown") params.set("text", "\r");
        command("Input.dispatchKeyEvent", params);
    }
}

void Browser::screenshot(const std::string& path) {
    // The whole page, not only the viewport: clip to the content's size.
    const auto layout = command("Page.getLayoutMetrics");
    const auto content = layout->getObject(layout->has("cssContentSize") ? "cssContentSize" : "contentSize");
    Poco::JSON::Object::Ptr clip = new Poco::JSON::Object;
    clip->set("x", 0);
    clip->set("y", 0);
    clip->set("width", content->getValue<double>("width"));
    clip->set("height", content->getValue<double>("height"));
    clip->set("scale", 1);
    Poco::JSON::Object params;
    params.set("format", "png");
    params.set("captureBeyondViewport", true);
    params.set("clip", clip);
    const auto result = command("Page.captureScreenshot", params);
    std::istringstream encoded(result->getValue<std::string>("data"));
    Poco::Base64Decoder decoder(encoded);
    std::string png;
    Poco::StreamCopier::copyToString(decoder, png);
    Poco::File(Poco::Path(path).parent()).createDirectories();
    writeFile(path, png);
}

} // namespace agent::test
