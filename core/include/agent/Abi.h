// The module ABI number and the symbol that carries it.
//
// The loader calls `agent_module_abi()` in a module before it touches the module's Poco manifest
// and refuses the module when the number differs from the agent's. Bump AGENT_SDK_ABI whenever a
// type in core/include/agent changes layout or a virtual function is added, removed or reordered.
#pragma once

#define AGENT_SDK_ABI 9

#define AGENT_MODULE_ABI_SYMBOL "agent_module_abi"

// Place once, at the end of a module's file, after its Poco manifest.
#define AGENT_MODULE_ABI()                                                                         \
    extern "C" __attribute__((visibility("default"))) int agent_module_abi() { return AGENT_SDK_ABI; }
