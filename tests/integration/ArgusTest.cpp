// The real agent with reporter-argus and the test Argus master: registration, health reports and
// node.json on loopback; a master that is down at start; start-up errors of the environment; and
// the Argus agent's own end-to-end scenario, a restart with a new address, across two network
// namespaces joined by a veth pair.
#include "ArgusMaster.h"
#include "TestSupport.h"

#include <Poco/File.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <gtest/gtest.h>

#include <csignal>
#include <unistd.h>

using namespace agent::test;

namespace {

const std::string kAgent = AGENT_BINARY;
const std::string kMasterBinary = std::string(AGENT_BUILD_DIR) + "/argus_master";
const std::string kEnv = "/usr/bin/env";
const std::string kIp = "/usr/sbin/ip";
const std::string kHostname = "test-host"; // writeAgentConfig's; two parts, so no identity of its own

// The variables the reporter reads; every agent here starts with none of them but those given.
const std::vector<std::string> kArgusVariables = {"MASTER_ENDPOINT", "REPORT_INTERVAL_SECONDS", "AGENT_HOSTNAME",
                                                  "AGENT_ENV",       "AGENT_USER",              "AGENT_INSTANCE"};

// argv that runs `agent <args>` with exactly the given Argus variables (env -u for the others).
std::vector<std::string> agentArgv(const std::map<std::string, std::string>& variables,
                                   const std::vector<std::string>& args, const std::vector<std::string>& prefix = {}) {
    std::vector<std::string> argv = prefix;
    argv.push_back(kEnv);
    for (const std::string& name : kArgusVariables) argv.insert(argv.end(), {"-u", name});
    for (const auto& [name, value] : variables) argv.push_back(name + "=" + value);
    argv.push_back(kAgent);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// An agent config: a sink-file (an agent needs a sink) and [reporter-argus] with its root in `dir`.
struct ArgusConfig {
    std::string moduleDir = AGENT_MODULE_DIR;
    std::string load = R"(["sink-file", "reporter-argus"])";
    std::string reporter = "retry_initial = 0.2\nretry_max = 1\n"; // [reporter-argus] keys besides root
    std::string root;                                               // "" = <dir>/argus
    std::string extra;                                              // more sections
};

std::string writeConfig(const TempDir& dir, const ArgusConfig& config = {}) {
    const std::string root = config.root.empty() ? dir / "argus" : config.root;
    return writeAgentConfig(dir, config.moduleDir, config.load,
                            "[sink-file]\npath = \"" + dir / "metrics.lp" + "\"\n[reporter-argus]\nroot = \"" + root +
                                "\"\n" + config.reporter + config.extra);
}

std::string nodeFileOf(const TempDir& dir) { return dir / ("argus/" + kHostname + "/node.json"); }

void writeHealthFiles(const TempDir& dir) {
    const std::string health = dir / ("argus/" + kHostname + "/health/");
    writeFile(health + "log-fluentbit.json", R"({"status": "healthy", "timestamp": "2024-05-01T00:00:00Z"})");
    writeFile(health + "metric-node-exporter.json", R"({"status": "healthy", "scrapes": 12})");
}

std::string nodeIdIn(const std::string& nodeFile) {
    try {
        Poco::JSON::Parser parser;
        const auto node = parser.parse(readFile(nodeFile)).extract<Poco::JSON::Object::Ptr>();
        return node->getValue<std::string>("id");
    } catch (const Poco::Exception&) {
        return ""; // not written yet
    }
}

bool hasHealth(const ArgusMaster::Node& node, const std::vector<std::string>& keys) {
    if (!node.health) return false;
    for (const std::string& key : keys) {
        if (!node.health->has(key)) return false;
    }
    return true;
}

std::string logOf(const TempDir& dir) { return readFile(dir / "log/agent.log"); }

CommandResult runAgentExpectingFailure(const std::map<std::string, std::string>& variables,
                                       const std::string& config) {
    return runCommand(agentArgv(variables, {"run", "-f", config}), {}, std::chrono::seconds(30));
}

} // namespace

TEST(ArgusReporter, RegistersAndReportsHealthFilesAndModuleHealthAndWritesNodeJson) {
    TempDir dir;
    ArgusMaster master;
    writeHealthFiles(dir);
    const std::string config = writeConfig(dir);
    BackgroundProcess agent(agentArgv({{"MASTER_ENDPOINT", master.endpoint()},
                                       {"REPORT_INTERVAL_SECONDS", "1"},
                                       {"AGENT_ENV", "dev"},
                                       {"AGENT_USER", "ann"},
                                       {"AGENT_INSTANCE", "3"}},
                                      {"run", "-f", config}),
                            dir.path());
    ASSERT_TRUE(eventually([&] {
        const auto nodes = master.nodes();
        return nodes.size() == 1 && nodes[0].reports >= 2 &&
               hasHealth(nodes[0], {"log-fluentbit", "metric-node-exporter", "agent"});
    })) << logOf(dir) << agent.err();
    const ArgusMaster::Node node = master.nodes()[0];
    EXPECT_EQ(node.name, kHostname);
    EXPECT_EQ(node.env, "dev");
    EXPECT_EQ(node.user, "ann");
    EXPECT_EQ(node.instance, "3");
    EXPECT_FALSE(node.ip.empty());
    EXPECT_EQ(node.health->getObject("metric-node-exporter")->getValue<int>("scrapes"), 12);
    // The agent's own entry holds every module's health, the reporter's included.
    const Poco::JSON::Object::Ptr modules = node.health->getObject("agent")->getObject("modules");
    ASSERT_TRUE(modules);
    ASSERT_TRUE(modules->getObject("reporter-argus"));
    EXPECT_EQ(modules->getObject("reporter-argus")->getValue<std::string>("node_id"), node.id);
    EXPECT_EQ(nodeIdIn(nodeFileOf(dir)), node.id);

    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
    const std::string log = logOf(dir);
    EXPECT_TRUE(contains(log, "event=register result=ok status=201 node_id=" + node.id)) << log;
    EXPECT_TRUE(contains(log, "event=report result=ok status=200 node_id=" + node.id + " health_entries=3")) << log;
}

TEST(ArgusReporter, MasterDownAtStartIsRetriedWhileTheRestOfTheAgentWorks) {
    TempDir dir;
    ArgusMaster master;
    master.goDown();
    const std::string modules = linkModuleDir(dir, {std::string(AGENT_MODULE_DIR) + "/reporter-argus.so",
                                                    std::string(AGENT_MODULE_DIR) + "/sink-file.so",
                                                    std::string(AGENT_TEST_MODULE_DIR) + "/source-good.so"});
    ArgusConfig withSource;
    withSource.moduleDir = modules;
    withSource.load = R"(["source-good", "sink-file", "reporter-argus"])";
    withSource.extra = "[source-good]\ninterval = 1\n";
    const std::string config = writeConfig(dir, withSource);
    BackgroundProcess agent(agentArgv({{"MASTER_ENDPOINT", master.endpoint()},
                                       {"REPORT_INTERVAL_SECONDS", "1"},
                                       {"AGENT_HOSTNAME", "dev-bob-7"}},
                                      {"run", "-f", config}),
                            dir.path());
    ASSERT_TRUE(eventually([&] { return contains(readFile(dir / "metrics.lp"), "test.good"); })) << logOf(dir);
    ASSERT_TRUE(eventually([&] { return contains(logOf(dir), "event=retry action=register attempt=3"); }))
        << logOf(dir);
    EXPECT_TRUE(agent.running());

    master.comeUp();
    ASSERT_TRUE(eventually([&] { return !master.nodes().empty() && master.nodes()[0].reports >= 1; })) << logOf(dir);
    const ArgusMaster::Node node = master.nodes()[0];
    EXPECT_EQ(node.name, "dev-bob-7"); // AGENT_HOSTNAME, and the identity from its parts
    EXPECT_EQ(node.env, "dev");
    EXPECT_EQ(node.user, "bob");
    EXPECT_EQ(node.instance, "7");
    EXPECT_TRUE(fileExists(dir / "argus/dev-bob-7/node.json"));

    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
}

TEST(ArgusReporter, StopDuringALongBackoffIsPrompt) {
    TempDir dir;
    ArgusMaster master;
    master.goDown();
    ArgusConfig slowRetry;
    slowRetry.reporter = "retry_initial = 60\nretry_max = 60\n";
    const std::string config = writeConfig(dir, slowRetry);
    BackgroundProcess agent(agentArgv({{"MASTER_ENDPOINT", master.endpoint()}, {"AGENT_HOSTNAME", "dev-bob-7"}},
                                      {"run", "-f", config}),
                            dir.path());
    ASSERT_TRUE(eventually([&] { return contains(logOf(dir), "event=retry action=register attempt=1"); })) << logOf(dir);
    const auto before = std::chrono::steady_clock::now();
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(3));
}

TEST(ArgusReporter, BadEnvironmentRefusesToStartNamingTheVariableAndTheValue) {
    TempDir dir;
    const std::string config = writeConfig(dir);
    const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
        {{}, "MASTER_ENDPOINT is not set"},
        {{{"MASTER_ENDPOINT", "m:3000"}, {"REPORT_INTERVAL_SECONDS", "0"}}, "REPORT_INTERVAL_SECONDS=\"0\""},
        {{{"MASTER_ENDPOINT", "m:3000"}, {"REPORT_INTERVAL_SECONDS", "soon"}}, "REPORT_INTERVAL_SECONDS=\"soon\""},
        {{{"MASTER_ENDPOINT", "m:3000"}, {"AGENT_ENV", "dev"}}, "missing AGENT_USER, AGENT_INSTANCE"},
        {{{"MASTER_ENDPOINT", "m:3000"}, {"AGENT_USER", "u"}, {"AGENT_INSTANCE", "1"}}, "missing AGENT_ENV"},
        {{{"MASTER_ENDPOINT", "https://m:3000"}}, "MASTER_ENDPOINT=\"https://m:3000\""},
    };
    for (const auto& [variables, expected] : cases) {
        const CommandResult result = runAgentExpectingFailure(variables, config);
        EXPECT_EQ(result.exitCode, 78) << expected;
        EXPECT_TRUE(contains(result.out + result.err, expected)) << expected << "\n" << result.out << result.err;
    }
}

TEST(ArgusReporter, UnwritableRootRefusesToStartWithAClearError) {
    TempDir dir;
    writeFile(dir / "not-a-directory", "x");
    ArgusConfig underAFile;
    underAFile.root = dir / "not-a-directory/argus";
    const std::string config = writeConfig(dir, underAFile);
    const CommandResult result =
        runAgentExpectingFailure({{"MASTER_ENDPOINT", "127.0.0.1:9"}, {"AGENT_HOSTNAME", "dev-bob-7"}}, config);
    EXPECT_NE(result.exitCode, 0);
    EXPECT_TRUE(contains(result.out + result.err, "reporter-argus: root " + dir / "not-a-directory/argus" +
                                                      " is not writable"))
        << result.out << result.err;
}

TEST(ArgusReporter, NoIdentityRefusesToStartSayingWhichVariablesToSet) {
    TempDir dir;
    const CommandResult result = runAgentExpectingFailure({{"MASTER_ENDPOINT", "127.0.0.1:9"}}, writeConfig(dir));
    EXPECT_NE(result.exitCode, 0);
    EXPECT_TRUE(contains(result.out + result.err, "set AGENT_ENV, AGENT_USER and AGENT_INSTANCE"))
        << result.out << result.err;
}

namespace {

// Two network namespaces ("hosts") joined by a veth pair, each end with an address of
// 10.231.0.0/24. The namespaces, and the pair with them, are deleted at destruction, whatever
// happened in between; the names carry the test's pid so that parallel runs do not collide.
class TwoHosts {
public:
    static constexpr const char* kMasterAddress = "10.231.0.1";
    static constexpr const char* kPrefix = "/24";

    // nullptr and the reason when namespaces cannot be created here.
    static std::unique_ptr<TwoHosts> create(std::string& whyNot) {
        if (geteuid() != 0) {
            whyNot = "network namespaces need root";
            return nullptr;
        }
        if (!fileExists(kIp)) {
            whyNot = kIp + " (iproute2) is not installed";
            return nullptr;
        }
        auto hosts = std::unique_ptr<TwoHosts>(new TwoHosts);
        const CommandResult probe = hosts->ip({"netns", "add", hosts->master_});
        if (probe.exitCode != 0) {
            whyNot = "ip netns add failed: " + probe.err;
            return nullptr;
        }
        hosts->created_.push_back(hosts->master_);
        return hosts;
    }

    ~TwoHosts() {
        for (const std::string& ns : created_) {
            const CommandResult removed = ip({"netns", "del", ns});
            if (removed.exitCode != 0) std::fprintf(stderr, "cannot remove netns %s: %s\n", ns.c_str(), removed.err.c_str());
        }
    }

    // The agent's host, the veth pair, the master's address and loopback in both.
    void wire(const std::string& agentAddress) {
        must({"netns", "add", agent_});
        created_.push_back(agent_);
        must({"link", "add", agentLink_, "netns", agent_, "type", "veth", "peer", "name", masterLink_, "netns", master_});
        must({"-n", master_, "addr", "add", std::string(kMasterAddress) + kPrefix, "dev", masterLink_});
        must({"-n", agent_, "addr", "add", agentAddress + kPrefix, "dev", agentLink_});
        for (const auto& [ns, link] : {std::pair{master_, masterLink_}, std::pair{agent_, agentLink_}}) {
            must({"-n", ns, "link", "set", "lo", "up"});
            must({"-n", ns, "link", "set", link, "up"});
        }
    }

    void moveAgent(const std::string& from, const std::string& to) {
        must({"-n", agent_, "addr", "del", from + kPrefix, "dev", agentLink_});
        must({"-n", agent_, "addr", "add", to + kPrefix, "dev", agentLink_});
    }

    std::vector<std::string> inMaster() const { return {kIp, "netns", "exec", master_}; }
    std::vector<std::string> inAgent() const { return {kIp, "netns", "exec", agent_}; }

private:
    TwoHosts()
        : master_("argus-m-" + std::to_string(getpid())), agent_("argus-a-" + std::to_string(getpid())),
          masterLink_("vam" + std::to_string(getpid())), agentLink_("vaa" + std::to_string(getpid())) {}

    CommandResult ip(const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {kIp};
        argv.insert(argv.end(), args.begin(), args.end());
        return runCommand(argv, {}, std::chrono::seconds(30));
    }

    void must(const std::vector<std::string>& args) const {
        const CommandResult result = ip(args);
        if (result.exitCode != 0) {
            std::string command = "ip";
            for (const std::string& arg : args) command += " " + arg;
            throw std::runtime_error(command + ": " + result.err);
        }
    }

    const std::string master_;
    const std::string agent_;
    const std::string masterLink_; // at most 15 characters, as interface names must be
    const std::string agentLink_;
    std::vector<std::string> created_;
};

std::vector<ArgusMaster::Node> masterState(const TempDir& dir) {
    return ArgusMaster::nodesFromState(readFile(dir / "master-state.json"));
}

} // namespace

// The Argus agent's end-to-end scenario without containers: the master on one host, the agent on
// another with address A; registration, a report with two health files, node.json. Then the agent
// stops, its host gets address B, the agent starts again (without the identity variables, so they
// come from node.json): the master still has one node, with the same id and address B.
TEST(ArgusReporter, KeepsItsNodeIdAcrossARestartWithANewAddressOnAnotherHost) {
    std::string whyNot;
    const std::unique_ptr<TwoHosts> hosts = TwoHosts::create(whyNot);
    if (!hosts) GTEST_SKIP() << "network namespaces cannot be created here: " << whyNot;
    const std::string addressA = "10.231.0.2";
    const std::string addressB = "10.231.0.3";
    hosts->wire(addressA);

    TempDir dir;
    writeHealthFiles(dir);
    const std::string config = writeConfig(dir);
    const std::string endpoint = std::string(TwoHosts::kMasterAddress) + ":3000";
    Poco::File(dir / "master").createDirectories();
    std::vector<std::string> masterArgv = hosts->inMaster();
    masterArgv.insert(masterArgv.end(), {kMasterBinary, TwoHosts::kMasterAddress, "3000", dir / "master-state.json"});
    BackgroundProcess master(masterArgv, dir / "master");
    ASSERT_TRUE(eventually([&] { return contains(master.out(), "listening on"); })) << master.err();

    std::string nodeId;
    {
        Poco::File(dir / "agent-a").createDirectories();
        BackgroundProcess agent(agentArgv({{"MASTER_ENDPOINT", endpoint},
                                           {"REPORT_INTERVAL_SECONDS", "1"},
                                           {"AGENT_ENV", "dev"},
                                           {"AGENT_USER", "e2e"},
                                           {"AGENT_INSTANCE", "1"}},
                                          {"run", "-f", config}, hosts->inAgent()),
                                dir / "agent-a", dir.path());
        ASSERT_TRUE(eventually([&] {
            const auto nodes = masterState(dir);
            return nodes.size() == 1 && nodes[0].ip == addressA &&
                   hasHealth(nodes[0], {"log-fluentbit", "metric-node-exporter"});
        })) << logOf(dir) << agent.err();
        nodeId = masterState(dir)[0].id;
        EXPECT_EQ(nodeIdIn(nodeFileOf(dir)), nodeId);
        agent.signal(SIGTERM);
        ASSERT_EQ(agent.wait(std::chrono::seconds(10)), 0);
    }
    const int reportsFromA = masterState(dir)[0].reports;

    hosts->moveAgent(addressA, addressB);
    Poco::File(dir / "agent-b").createDirectories();
    BackgroundProcess agent(agentArgv({{"MASTER_ENDPOINT", endpoint}, {"REPORT_INTERVAL_SECONDS", "1"}},
                                      {"run", "-f", config}, hosts->inAgent()),
                            dir / "agent-b", dir.path());
    ASSERT_TRUE(eventually([&] {
        const auto nodes = masterState(dir);
        return !nodes.empty() && nodes[0].ip == addressB && nodes[0].reports > reportsFromA;
    })) << logOf(dir) << agent.err();
    const std::vector<ArgusMaster::Node> nodes = masterState(dir);
    ASSERT_EQ(nodes.size(), 1u) << "a second node was registered";
    EXPECT_EQ(nodes[0].id, nodeId);
    EXPECT_EQ(nodes[0].env, "dev"); // from node.json: the second run had no identity variables
    EXPECT_EQ(nodes[0].user, "e2e");
    EXPECT_EQ(nodes[0].instance, "1");
    EXPECT_EQ(nodes[0].registrations, 2);
    EXPECT_TRUE(contains(logOf(dir), "identity_source=node.json saved_node_id=" + nodeId)) << logOf(dir);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(10)), 0);
    master.signal(SIGTERM);
    EXPECT_EQ(master.wait(std::chrono::seconds(10)), 0);
}

// etc/argus.toml, the shipped Argus-only config: reporter-argus alone, no source and so no sink.
// `agent check` passes it, and the agent registers the node and reports, as the Argus agent did.
TEST(ArgusReporter, ArgusOnlyConfigNeedsNoSinkAndRegistersAndReports) {
    TempDir dir;
    ArgusMaster master;
    const std::string config = std::string(AGENT_SOURCE_DIR) + "/etc/argus.toml";
    const std::vector<std::string> args = {"-f",
                                           config,
                                           "-Dmodules.dir=" AGENT_MODULE_DIR,
                                           "-Dagent.statedir=" + dir / "state",
                                           "-Dagent.pidfile=" + dir / "agent.pid",
                                           "-Dlog.logdir=" + dir / "log",
                                           "-Dreporter-argus.root=" + dir / "argus"};
    const std::map<std::string, std::string> variables = {{"MASTER_ENDPOINT", master.endpoint()},
                                                          {"REPORT_INTERVAL_SECONDS", "1"},
                                                          {"AGENT_HOSTNAME", kHostname},
                                                          {"AGENT_ENV", "prod"},
                                                          {"AGENT_USER", "ops"},
                                                          {"AGENT_INSTANCE", "7"}};
    std::vector<std::string> check = {"check"};
    check.insert(check.end(), args.begin(), args.end());
    const CommandResult checked = runCommand(agentArgv(variables, check), {}, std::chrono::seconds(30));
    EXPECT_EQ(checked.exitCode, 0) << checked.out << checked.err;
    EXPECT_TRUE(contains(checked.out, "module reporter-argus: ok")) << checked.out;

    std::vector<std::string> run = {"run"};
    run.insert(run.end(), args.begin(), args.end());
    BackgroundProcess agent(agentArgv(variables, run), dir.path());
    ASSERT_TRUE(eventually([&] {
        const auto nodes = master.nodes();
        return nodes.size() == 1 && nodes[0].reports >= 2 && hasHealth(nodes[0], {"agent"});
    })) << logOf(dir) << agent.err();
    const ArgusMaster::Node node = master.nodes()[0];
    EXPECT_EQ(node.name, kHostname);
    EXPECT_EQ(node.env, "prod");
    EXPECT_EQ(node.instance, "7");
    const Poco::JSON::Object::Ptr modules = node.health->getObject("agent")->getObject("modules");
    ASSERT_TRUE(modules);
    EXPECT_EQ(modules->size(), 1u); // reporter-argus, and no sink
    EXPECT_EQ(nodeIdIn(dir / ("argus/" + kHostname + "/node.json")), node.id);
    agent.signal(SIGTERM);
    EXPECT_EQ(agent.wait(std::chrono::seconds(15)), 0) << logOf(dir);
    EXPECT_FALSE(contains(logOf(dir), "no sink")) << logOf(dir);
}
