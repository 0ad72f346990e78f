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
    // Entries whose value is null: passed over and counted, not logged. A plugin prints them for
    // a figure it has no reading of this time, and the Go agent's pipeline skipped them silently.
    std::size_t skipped = 0;
    bool valid = true;                  // false when the output is not a JSON list at all
    std::string error;                  // why, when !valid
};

// Parses a periodic plugin's output. Empty output (only whitespace) and the JSON literal `null`
// are an empty list: a good run with nothing to report (lodastack-plugins/nvidia prints null on a
// host without a GPU). Each good entry becomes a point in `ns` named PLUGIN.<project>.<name> with
// its tags and field `value` (integer, float, bool or string; a string that is a finite decimal
// number, such as "12.34", becomes a float as the Go agent stored it); an entry whose value is
// null is skipped, a bad entry is dropped, both counted, and the rest is kept.
ParsedOutput parsePluginOutput(std::string_view output, const std::string& ns, const std::string& project);

// The start of a plugin's output for a log line: at most `maxBytes` bytes, quoted, with quotes,
// backslashes, control characters and non-ASCII bytes escaped (\n, \t, \xHH) so that the line
// stays one line; followed by "(first N of M bytes)" when it was cut.
std::string outputExcerpt(std::string_view output, std::size_t maxBytes = 200);

// PLUGIN.<project> in `ns`: value 0 when the run was ok, 1 otherwise; tag status = ok, timeout,
// error or bad_output (a plugin that could not be started counts as error).
Metric resultMetric(const std::string& ns, const std::string& project, RunStatus status, std::int64_t timestamp);
const char* statusTag(RunStatus status);

} // namespace agent::exec
