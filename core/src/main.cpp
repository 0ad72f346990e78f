// Entry point of `agent`: checks the command line, then hands over to the Poco application.
#include "AgentApp.h"

#include <iostream>

int main(int argc, char** argv) {
    std::string error;
    if (!agent::AgentApp::validateCommandLine(argc, argv, error)) {
        std::cerr << "agent: " << error << "\n\n" << agent::AgentApp::usage();
        return agent::AgentApp::kExitUsage;
    }
    agent::AgentApp app;
    return app.run(argc, argv);
}
