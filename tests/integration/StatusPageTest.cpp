// The status page (GET /, modules/api-http/web/) in a real browser: headless chromium loads it from
// a running agent with source-netif, source-host, source-exec (a registry fixture and two git
// plugins), api-http and sink-file, reads the DOM, presses a plugin's "Disable" button (with the
// mouse) and then "Enable" (with the keyboard), and with a token set sees only the token prompt.
// Screenshots go to <build>/test-output/StatusPage/.
#include "Browser.h"
#include "GitServer.h"
#include "RegistryFixture.h"
#include "TestSupport.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <gtest/gtest.h>

#include <csignal>
#include <iostream>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;
const std::string kOutputDir = std::string(AGENT_BUILD_DIR) + "/test-output/StatusPage";

int freePort() {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    return socket.address().port();
}

struct Reply {
    int status = 0;
    std::string body;
    std::string contentType;
};

Reply get(int port, const std::string& uri, const std::string& token = "") {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(30, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, uri, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!token.empty()) request.set("Authorization", "Bearer " + token);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    Reply reply;
    Poco::StreamCopier::copyToString(session.receiveResponse(response), reply.body);
    reply.status = response.getStatus();
    reply.contentType = response.getContentType();
    return reply;
}

// The row of /plugins/list for ns/project, or null.
Poco::JSON::Object::Ptr pluginRow(int port, const std::string& project, const std::string& token = "") {
    const Reply reply = get(port, "/plugins/list", token);
    if (reply.status != 200) return nullptr;
    const auto rows = Poco::JSON::Parser().parse(reply.body).extract<Poco::JSON::Array::Ptr>();
    for (std::size_t i = 0; i < rows->size(); ++i) {
        const auto row = rows->getObject(static_cast<unsigned>(i));
        if (row->getValue<std::string>("project") == project) return row;
    }
    return nullptr;
}

class StatusPageTest : public testing::Test {
protected:
    void SetUp() override {
        // Not a skip: `make test` installs chromium (scripts/deps.sh); a machine without it must say so.
        ASSERT_FALSE(Browser::findChromium().empty())
            << "the status page test needs a browser: install the Debian package `chromium` (scripts/deps.sh does)";
    }

    void startAgent(const std::string& apiSection) {
        git_.createRepo("ops/disk", "#!/bin/sh\necho '[{\"name\": \"used\", \"value\": 42}]'\n");
        git_.createRepo("ops/broken", "#!/bin/sh\necho oops >&2\nexit 3\n");
        registry_.setNamespace("ops", "1",
                               {RegistryFixture::pluginEntry("disk", "git@git.example.com:ops/disk.git", "2"),
                                RegistryFixture::pluginEntry("broken", "git@git.example.com:ops/broken.git", "2")});
        port_ = freePort();
        const std::string config = writeAgentConfig(
            dir_, AGENT_MODULE_DIR, R"(["source-netif", "source-host", "source-exec", "api-http", "sink-file"])",
            "[api-http]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n" + apiSection +
                "[source-netif]\ninterval = 2\n[source-host]\ninterval = 2\n"
                "[source-exec]\ninterval = 1\nclone_splay = 0\nkill_grace = 0.2\n"
                "[sink-file]\npath = \"" + dir_ / "metrics.lp" + "\"\n",
            "registryaddr = \"" + registry_.url() + "\"\npluginsuser = \"nobody\"\ngit = \"" + git_.fileUrlTemplate() + "\"\n");
        agent_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{kAgent, "run", "-f", config}, dir_.path());
        ASSERT_TRUE(eventually([&] { return contains(readFile(dir_ / "log/agent.log"), "started: pid") || !agent_->running(); },
                               std::chrono::seconds(30)) && agent_->running())
            << readFile(dir_ / "log/agent.log") << agent_->err();
    }

    void TearDown() override {
        if (!agent_) return;
        agent_->signal(SIGTERM);
        EXPECT_EQ(agent_->wait(std::chrono::seconds(15)), 0) << readFile(dir_ / "log/agent.log");
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

    // The text of the elements matching `selector`, joined by newlines.
    static std::string text(Browser& browser, const std::string& selector) {
        return browser.evaluate("[...document.querySelectorAll('" + selector + "')].map(e => e.innerText).join('\\n')").toString();
    }

    TempDir dir_;
    GitServer git_;
    RegistryFixture registry_;
    std::unique_ptr<BackgroundProcess> agent_;
    int port_ = 0;
};

} // namespace

TEST_F(StatusPageTest, ShowsEveryModuleBothPluginsAndChartsAndItsDisableButtonWorks) {
    startAgent("");
    // Both plugins ran at least once, so their status is known.
    ASSERT_TRUE(eventually([&] {
        const auto disk = pluginRow(port_, "disk");
        const auto broken = pluginRow(port_, "broken");
        return disk && broken && disk->getValue<int>("runs") > 0 && broken->getValue<int>("runs") > 0;
    }, std::chrono::seconds(60))) << readFile(dir_ / "log/agent.log");

    // The page and its files need no token and come from the agent; the data routes are JSON.
    const Reply page = get(port_, "/");
    EXPECT_EQ(page.status, 200);
    EXPECT_TRUE(contains(page.contentType, "text/html")) << page.contentType;
    EXPECT_FALSE(contains(page.body, "http://")) << "the page must not load anything from another host";
    EXPECT_FALSE(contains(page.body, "https://"));
    EXPECT_EQ(get(port_, "/static/app.js").status, 200);
    EXPECT_EQ(get(port_, "/static/style.css").status, 200);
    const Reply history = get(port_, "/me/history");
    EXPECT_EQ(history.status, 200);
    EXPECT_TRUE(contains(history.body, "\"sink.sink-file.in\"")) << history.body;
    EXPECT_EQ(get(port_, "/me/log").status, 200);

    Browser browser(1280, 900);
    browser.navigate(url());
    ASSERT_TRUE(browser.waitFor("document.querySelectorAll('#modules tbody tr').length === 5", std::chrono::seconds(30)))
        << text(browser, "body") << browser.log();
    const std::string modules = text(browser, "#modules tbody th");
    for (const char* module : {"source-netif", "source-host", "source-exec", "api-http", "sink-file"})
        EXPECT_TRUE(contains(modules, module)) << modules;
    EXPECT_TRUE(contains(text(browser, "#modules tbody"), "ok")) << text(browser, "#modules tbody");
    EXPECT_TRUE(contains(text(browser, "#sinks tbody"), "sink-file")) << text(browser, "#sinks tbody");
    EXPECT_TRUE(contains(text(browser, "#agent-facts"), "test-host")) << text(browser, "#agent-facts");
    EXPECT_TRUE(contains(text(browser, "#agent-facts"), "ops")) << text(browser, "#agent-facts"); // namespaces

    // Both plugins with their status: the good one ok, the failing one an error.
    ASSERT_TRUE(browser.waitFor("document.querySelectorAll('#plugins tbody tr').length === 2"));
    const std::string disk = text(browser, "#plugins tbody tr[data-plugin=\"ops/disk\"]");
    const std::string broken = text(browser, "#plugins tbody tr[data-plugin=\"ops/broken\"]");
    EXPECT_TRUE(contains(disk, "ok")) << disk;
    EXPECT_TRUE(contains(broken, "error")) << broken;
    // The filter hides what does not match.
    browser.evaluate("(() => { const f = document.querySelector('#plugin-filter'); f.value = 'broken';"
                     " f.dispatchEvent(new Event('input')); })()");
    EXPECT_EQ(browser.evaluate("document.querySelectorAll('#plugins tbody tr').length").convert<int>(), 1);
    browser.evaluate("(() => { const f = document.querySelector('#plugin-filter'); f.value = '';"
                     " f.dispatchEvent(new Event('input')); })()");
    // The failing plugin's warning is in the log table.
    ASSERT_TRUE(browser.waitFor("document.querySelector('#log tbody').innerText.includes('plugin ops/broken: error')"))
        << text(browser, "#log tbody");

    // Charts: the host's and the sink's, each with a line of at least two samples (10 s apart).
    EXPECT_TRUE(browser.waitFor("document.querySelector('#chart-sink-sink-file svg') !== null"));
    ASSERT_TRUE(browser.waitFor("+document.querySelector('#chart-host path.line.series-1').dataset.points >= 2",
                                std::chrono::seconds(40)))
        << get(port_, "/me/history").body;
    EXPECT_TRUE(browser.waitFor("+document.querySelector('#chart-sink-sink-file path.line.series-0').dataset.points >= 1"))
        << get(port_, "/me/history").body;
    // Nothing came from another origin.
    EXPECT_TRUE(browser.evaluate("performance.getEntriesByType('resource').every(e => e.name.startsWith(location.origin))").convert<bool>());

    const std::string screenshot = kOutputDir + "/status-page.png";
    browser.screenshot(screenshot);
    std::cout << "screenshot: " << screenshot << std::endl;
    EXPECT_GT(readFile(screenshot).size(), 10000u);

    // Pressing "Disable" disables the plugin for the agent, and the page says so.
    browser.click("button[data-action=\"disable\"][data-plugin=\"ops/disk\"]");
    ASSERT_TRUE(eventually([&] {
        const auto row = pluginRow(port_, "disk");
        return row && !row->getValue<bool>("enabled");
    })) << readFile(dir_ / "log/agent.log");
    EXPECT_TRUE(pluginRow(port_, "broken")->getValue<bool>("enabled"));
    EXPECT_TRUE(browser.waitFor("document.querySelector('#plugin-action-result').innerText.includes('Disabled ops/disk')"))
        << text(browser, "#plugin-action-result");
    EXPECT_TRUE(browser.waitFor("document.querySelector('button[data-action=\"enable\"][data-plugin=\"ops/disk\"]') !== null"));
    EXPECT_TRUE(contains(text(browser, "#plugins tbody tr[data-plugin=\"ops/disk\"]"), "disabled"));

    // The focus moved to the Enable button that replaced it; Enter on it enables the plugin again.
    ASSERT_TRUE(browser.waitFor("document.activeElement.dataset.focusKey === 'enable:ops/disk'"))
        << browser.evaluate("document.activeElement.outerHTML").toString();
    browser.pressEnter();
    EXPECT_TRUE(eventually([&] {
        const auto row = pluginRow(port_, "disk");
        return row && row->getValue<bool>("enabled");
    })) << readFile(dir_ / "log/agent.log");
    EXPECT_TRUE(browser.waitFor("document.querySelector('#plugin-action-result').innerText.includes('Enabled ops/disk')"))
        << text(browser, "#plugin-action-result");
}

TEST_F(StatusPageTest, WithATokenThePageAsksForItShowsNoDataAndKeepsItForTheSession) {
    startAgent("token = \"s3cret-token\"\n");
    // The page itself needs no token (it holds no data); every data route does.
    EXPECT_EQ(get(port_, "/").status, 200);
    EXPECT_EQ(get(port_, "/static/app.js").status, 200);
    for (const char* route : {"/me/status", "/me/history", "/me/log", "/plugins/list"}) {
        EXPECT_EQ(get(port_, route).status, 401) << route;
        EXPECT_EQ(get(port_, route, "s3cret-token").status, 200) << route;
    }

    Browser browser(390, 844); // a phone's screen
    browser.navigate(url());
    ASSERT_TRUE(browser.waitFor("!document.querySelector('#token-section').hidden")) << text(browser, "body") << browser.log();
    EXPECT_TRUE(browser.evaluate("document.querySelector('#data').hidden").convert<bool>());
    EXPECT_EQ(browser.evaluate("document.querySelectorAll('#data tbody tr').length").convert<int>(), 0);
    const std::string visible = text(browser, "body");
    EXPECT_FALSE(contains(visible, "test-host")) << visible;
    EXPECT_FALSE(contains(visible, "sink-file")) << visible;
    EXPECT_TRUE(contains(visible, "API token")) << visible; // the field's label
    EXPECT_EQ(browser.evaluate("document.activeElement.id").toString(), "token-input");
    browser.screenshot(kOutputDir + "/status-page-token.png");

    // A wrong token is refused and not kept.
    browser.evaluate("document.querySelector('#token-input').value = 'wrong'");
    browser.click("#token-form button[type=submit]");
    ASSERT_TRUE(browser.waitFor("document.querySelector('#token-error').innerText.includes('refused')"));
    EXPECT_TRUE(browser.evaluate("sessionStorage.length === 0").convert<bool>());

    // The right one shows the data, and is kept for the session: a reload asks no more.
    browser.evaluate("document.querySelector('#token-input').value = 's3cret-token'");
    browser.click("#token-form button[type=submit]");
    ASSERT_TRUE(browser.waitFor("document.querySelectorAll('#modules tbody tr').length === 5", std::chrono::seconds(30)))
        << text(browser, "body");
    EXPECT_TRUE(browser.evaluate("document.querySelector('#token-section').hidden").convert<bool>());
    browser.navigate(url());
    ASSERT_TRUE(browser.waitFor("document.querySelectorAll('#modules tbody tr').length === 5", std::chrono::seconds(30)))
        << text(browser, "body");
    EXPECT_TRUE(browser.evaluate("document.querySelector('#token-section').hidden").convert<bool>());
    browser.screenshot(kOutputDir + "/status-page-phone.png");
    // On a phone the page is no wider than the screen: wide tables scroll inside their card.
    EXPECT_LE(browser.evaluate("document.documentElement.scrollWidth").convert<int>(), 390)
        << "wider than the screen: "
        << browser.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
                            ".slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className).join(' ')").toString();
}
