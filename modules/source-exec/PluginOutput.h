// What a plugin run becomes: its stdout (a JSON list of {name, timestamp, tags, value}) turned
// into metrics named PLUGIN.<project>.<name>, and the run's own result metric PLUGIN.<project>.
#pragma once

#include "PluginRunner.h"

#include <agent/Metric.h>

#include <string>
#include <string_view>
#include <vector>

namespace agent::exec {

struct ParsedOutput {
    Batch metrics;
    std::size_t dropped = 0;            // entries refused: not an object, bad name, no usable value
    std::string firstProblem;           // the first refusal, for the log
    bool valid = true;                  // false when the output is not a JSON list at all
    std::string error;                  // why, when !valid
};

// Parses a periodic plugin's output. Empty output (only whitespace) is an empty list. Each good
// entry becomes a point in `ns` named PLUGIN.<project>.<name> with its tags and field `value`
// (integer, float, bool or string); a bad entry is dropped and counted, the rest is kept.
ParsedOutput parsePluginOutput(std::string_view output, const std::string& ns, const std::string& project);

// PLUGIN.<project> in `ns`: value 0 when the run was ok, 1 otherwise; tag status = ok, timeout,
// error or bad_output (a plugin that could not be started counts as error).
Metric resultMetric(const std::string& ns, const std::string& project, RunStatus status, std::int64_t timestamp);
const char* statusTag(RunStatus status);

} // namespace agent::exec
