// The spool's record payload: a Batch in a compact binary form (varint lengths, tagged field
// values). Decoding is defensive: a corrupt payload is refused, never read past its end.
#pragma once

#include <agent/Metric.h>

#include <string>
#include <string_view>

namespace agent {

// Appends the encoding of `batch` to `out`.
void encodeBatch(const Batch& batch, std::string& out);
// Replaces `out` with the batch in `data`; false (and `out` unspecified) when malformed.
bool decodeBatch(std::string_view data, Batch& out);

} // namespace agent
