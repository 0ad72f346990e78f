# agent_add_module(<name> SOURCES <files...> [LIBRARIES <targets...>])
#
# Builds one agent module: a MODULE library named exactly <name>.so (no "lib" prefix), linked
# against the SDK, placed where the agent looks for modules. The same function is installed with
# the SDK, so a third-party module's CMakeLists.txt is three lines long.
function(agent_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name})
  if(DEFINED AGENT_MODULE_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${AGENT_MODULE_OUTPUT_DIR})
  endif()
  if(TARGET AgentSDK::sdk)
    target_link_libraries(${name} PRIVATE AgentSDK::sdk ${ARG_LIBRARIES})
  else()
    target_link_libraries(${name} PRIVATE agent_sdk ${ARG_LIBRARIES})
  endif()
  set_property(GLOBAL APPEND PROPERTY AGENT_MODULES ${name})
  if(DEFINED AGENT_INSTALL_MODULEDIR)
    install(TARGETS ${name} LIBRARY DESTINATION ${AGENT_INSTALL_MODULEDIR} COMPONENT runtime)
  endif()
endfunction()
