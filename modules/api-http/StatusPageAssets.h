// The status page's files (web/), compiled into the module by web/embed.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace agent::api {

struct EmbeddedFile {
    std::string_view name; // the file name under web/, e.g. "app.js"
    std::string_view bytes;
};

const std::vector<EmbeddedFile>& embeddedFiles();

} // namespace agent::api
