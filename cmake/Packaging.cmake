# Installed layout, the systemd unit, the maintainer scripts and CPack's Debian packages.
#
#   <package>      /usr/bin/agent, /usr/lib/<arch>/libagent_sdk.so.<ABI>, /usr/lib/<package>/modules/*.so,
#                  /etc/<package>/agent.toml (conffile), the systemd unit, /usr/share/doc/<package>/
#   <package>-dev  the SDK headers, libagent_sdk.so and the CMake package config (find_package(AgentSDK))
#
# Every module built by agent_add_module() installs itself into the runtime component, so a new
# module is packaged without an edit here. The version is project()'s, in the top CMakeLists.txt.
# `make package` (scripts/package.sh) builds both .deb files and the self-contained tarball.

set(AGENT_USER ${AGENT_PACKAGE_NAME})
set(AGENT_STATE_DIR /var/lib/${AGENT_PACKAGE_NAME})
set(AGENT_LOG_DIR /var/log/${AGENT_PACKAGE_NAME})
set(AGENT_RUN_DIR /run/${AGENT_PACKAGE_NAME})
set(AGENT_FULL_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(AGENT_FULL_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/${AGENT_PACKAGE_NAME})
set(AGENT_DOC_DIR ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/${AGENT_PACKAGE_NAME})
if(AGENT_HAVE_SYSTEMD)
  set(AGENT_SERVICE_TYPE notify) # the agent says READY=1 once its modules run
else()
  set(AGENT_SERVICE_TYPE simple)
endif()

# The default config loads every module of this build that needs no other service.
get_property(built_modules GLOBAL PROPERTY AGENT_MODULES)
set(AGENT_DEFAULT_LOAD "")
foreach(module source-netif source-host api-http sink-file)
  if(module IN_LIST built_modules)
    string(APPEND AGENT_DEFAULT_LOAD "${AGENT_DEFAULT_LOAD_SEPARATOR}\"${module}\"")
    set(AGENT_DEFAULT_LOAD_SEPARATOR ", ")
  endif()
endforeach()

set(packaging_out ${CMAKE_BINARY_DIR}/packaging)
# The installed config: absolute paths of the system layout.
set(AGENT_CONFIG_FLAVOUR "package")
set(AGENT_CONFIG_NOTE "#\n# The service may write only below ${AGENT_STATE_DIR}, ${AGENT_LOG_DIR} and ${AGENT_RUN_DIR}:\n# paths elsewhere need ReadWritePaths= in a drop-in (systemctl edit ${AGENT_PACKAGE_NAME}).\n")
set(AGENT_MODULE_DIR_FOR_CONFIG ${CMAKE_INSTALL_PREFIX}/${AGENT_INSTALL_MODULEDIR})
configure_file(${PROJECT_SOURCE_DIR}/packaging/agent.toml.in ${packaging_out}/agent.toml @ONLY)
# The tarball's config: paths relative to the unpacked folder, which its run script enters.
set(AGENT_CONFIG_FLAVOUR "self-contained tarball; relative paths are relative to its folder")
set(AGENT_CONFIG_NOTE "")
foreach(var STATE LOG RUN)
  set(saved_${var} ${AGENT_${var}_DIR})
endforeach()
set(AGENT_STATE_DIR ./var/lib)
set(AGENT_LOG_DIR ./var/log)
set(AGENT_RUN_DIR ./var/run)
set(AGENT_MODULE_DIR_FOR_CONFIG ./lib/${AGENT_PACKAGE_NAME}/modules)
configure_file(${PROJECT_SOURCE_DIR}/packaging/agent.toml.in ${packaging_out}/tarball/agent.toml @ONLY)
foreach(var STATE LOG RUN)
  set(AGENT_${var}_DIR ${saved_${var}})
endforeach()

# etc/argus.toml (an Argus-only host) as an example with the system's paths.
file(READ ${PROJECT_SOURCE_DIR}/etc/argus.toml argus_example)
foreach(pair "./var/state|${AGENT_STATE_DIR}/state" "./var/agent.pid|${AGENT_RUN_DIR}/agent.pid"
             "./var/log|${AGENT_LOG_DIR}" "./build/modules|${CMAKE_INSTALL_PREFIX}/${AGENT_INSTALL_MODULEDIR}")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  string(REPLACE "\"${from}\"" "\"${to}\"" argus_example "${argus_example}")
endforeach()
file(WRITE ${packaging_out}/argus.toml "${argus_example}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/etc/argus.toml)

configure_file(${PROJECT_SOURCE_DIR}/packaging/agent.service.in ${packaging_out}/${AGENT_PACKAGE_NAME}.service @ONLY)
configure_file(${PROJECT_SOURCE_DIR}/packaging/tmpfiles.conf.in ${packaging_out}/${AGENT_PACKAGE_NAME}-tmpfiles.conf @ONLY)
foreach(script postinst prerm postrm)
  configure_file(${PROJECT_SOURCE_DIR}/packaging/${script}.in ${packaging_out}/deb/${script} @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
file(WRITE ${packaging_out}/deb/conffiles "${AGENT_FULL_CONFDIR}/agent.toml\n")

# /etc for a /usr install (the package), else relative to the prefix, so `cmake --install --prefix X`
# writes nothing outside X.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(config_destination ${AGENT_FULL_CONFDIR})
else()
  set(config_destination ${CMAKE_INSTALL_SYSCONFDIR}/${AGENT_PACKAGE_NAME})
endif()
install(FILES ${packaging_out}/agent.toml DESTINATION ${config_destination} COMPONENT runtime)
install(FILES ${packaging_out}/${AGENT_PACKAGE_NAME}.service DESTINATION lib/systemd/system COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/packaging/copyright
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${AGENT_PACKAGE_NAME} COMPONENT runtime)
install(FILES ${packaging_out}/argus.toml DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${AGENT_PACKAGE_NAME}/examples
        COMPONENT runtime)
install(FILES ${packaging_out}/${AGENT_PACKAGE_NAME}-tmpfiles.conf DESTINATION lib/tmpfiles.d
        RENAME ${AGENT_PACKAGE_NAME}.conf COMPONENT runtime)

# --- CPack: two Debian packages from the two install components --------------------------------
set(CPACK_PACKAGE_NAME ${AGENT_PACKAGE_NAME})
set(CPACK_PACKAGE_VENDOR "agent maintainers")
set(CPACK_PACKAGE_CONTACT "agent maintainers <agent@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends come from what the binaries link (dpkg-shlibdeps), plus the tools the maintainer scripts call.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# Modules need libagent_sdk, which this very package brings: dpkg-shlibdeps runs in the package's
# staging root, so a path relative to it finds the library there.
string(REGEX REPLACE "^/" "" staged_libdir "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${staged_libdir})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${AGENT_PACKAGE_NAME})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    "${packaging_out}/deb/postinst;${packaging_out}/deb/prerm;${packaging_out}/deb/postrm;${packaging_out}/deb/conffiles")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "Modular host monitoring agent\n The agent collects host and interface figures and runs exec plugins from git,\n spools every accepted point to disk and delivers it to NSQ, InfluxDB or a file.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME ${AGENT_PACKAGE_NAME}-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libpoco-dev")
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "SDK of the host monitoring agent: headers and CMake package for modules\n find_package(AgentSDK) and agent_add_module() build a module out of tree.")
include(CPack)
