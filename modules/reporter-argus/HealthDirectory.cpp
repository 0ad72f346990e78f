#include "HealthDirectory.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>

namespace agent::argus {
namespace {

constexpr std::string_view kJsonSuffix = ".json";

namespace fs = std::filesystem;

// Reads at most `cap` + 1 bytes, so that a file that grew past the cap after the size check is
// still caught without reading all of it.
bool readCapped(const fs::path& path, std::size_t cap, std::string& text) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    text.resize(cap + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    return !in.bad();
}

std::vector<std::string> healthFileNames(const fs::path& directory) {
    std::vector<std::string> names;
    std::error_code error;
    for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
        std::string name = it->path().filename().string();
        if (isHealthFileName(name)) names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace

bool isHealthFileName(const std::string& name) {
    if (name.size() <= kJsonSuffix.size() || name.front() == '.') return false;
    if (name.compare(name.size() - kJsonSuffix.size(), kJsonSuffix.size(), kJsonSuffix) != 0) return false;
    const std::size_t dash = name.find('-');
    return dash != std::string::npos && dash > 0 && dash < name.size() - kJsonSuffix.size();
}

HealthScan scanHealthDirectory(const std::string& directory, const HealthLimits& limits) {
    HealthScan scan;
    std::size_t total = 0;
    for (const std::string& name : healthFileNames(directory)) {
        const fs::path path = fs::path(directory) / name;
        const std::string shown = path.string();
        std::error_code error;
        if (!fs::is_regular_file(path, error)) {
            scan.warnings.push_back("health file " + shown + ": not a regular file, skipped");
            continue;
        }
        const std::uintmax_t size = fs::file_size(path, error);
        std::string text;
        if (error || !readCapped(path, limits.maxFileBytes, text)) {
            scan.warnings.push_back("health file " + shown + ": cannot be read, skipped");
            continue;
        }
        if (size > limits.maxFileBytes || text.size() > limits.maxFileBytes) {
            scan.warnings.push_back("health file " + shown + ": " + std::to_string(std::max<std::uintmax_t>(size, text.size())) +
                                    " bytes, over the cap of " + std::to_string(limits.maxFileBytes) + ", skipped");
            continue;
        }
        if (total + text.size() > limits.maxTotalBytes) {
            scan.warnings.push_back("health file " + shown + ": the health files would pass " +
                                    std::to_string(limits.maxTotalBytes) + " bytes in all, skipped");
            continue;
        }
        try {
            scan.entries.emplace_back(name.substr(0, name.size() - kJsonSuffix.size()), parseJsonObject(text));
            total += text.size();
        } catch (const ArgusProtocolError& e) {
            scan.warnings.push_back("health file " + shown + ": " + e.what() + ", skipped");
        }
    }
    return scan;
}

} // namespace agent::argus
