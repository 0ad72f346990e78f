// The `agent` command: a Poco ServerApplication whose first argument picks what to do
// (run, start, stop, status, check, once, version). `run` is the agent itself.
#pragma once

#include "AgentConfig.h"

#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>

#include <string>
#include <vector>

namespace agent {

class AgentApp : public Poco::Util::ServerApplication {
public:
    // Exit codes beyond Poco's: wrong usage, and `status` of a stopped agent (as LSB says).
    static constexpr int kExitUsage = 2;
    static constexpr int kExitNotRunning = 3;

    // Checks the command line before Poco sees it, so that wrong usage gets the usage text and
    // exit code 2 rather than Poco's generic configuration error.
    static bool validateCommandLine(int argc, char** argv, std::string& error);
    static std::string usage();

protected:
    void defineOptions(Poco::Util::OptionSet& options) override;
    void handleOption(const std::string& name, const std::string& value) override;
    int main(const std::vector<std::string>& args) override;

private:
    static void defineAgentOptions(Poco::Util::OptionSet& options);

    int runAgent();
    int startDaemon();
    int stopAgent();
    int showStatus();
    int checkConfig();
    int runOnce();
    int showVersion();

    // Loads the config file; on failure prints every problem to stderr and returns false.
    bool loadConfig(std::unique_ptr<AgentConfig>& config, std::string* errorText = nullptr);
    std::string defaultModuleDir() const;
    void removePluginCache(const AgentSettings& settings);

    std::string configPath_;
    std::string mode_;
    std::vector<std::string> defines_;
    std::string launchDir_; // the working directory at start; relative paths are resolved here
    bool helpRequested_ = false;
};

} // namespace agent
