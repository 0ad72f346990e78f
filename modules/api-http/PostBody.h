// The body of POST /post?ns=NS turned into metrics: a JSON list of {name, timestamp, tags, value}
// entries (or `fields` instead of `value`), each becoming RUN.<name> in the namespace NS.
// Pure parsing: no I/O, no state besides a per-thread simdjson parser that is reused.
//
// The whole body is checked before anything is accepted: one bad entry refuses the body, with an
// error naming the entry's index (0-based) and the problem. An entry without a value (null) is not
// bad: it is skipped and counted, and the rest of the body is taken. The rules, the same for both
// parsers:
//   - a body of only whitespace is refused ("empty body"); `[]` is fine and gives no metrics;
//   - the body is one JSON value (RFC 8259, UTF-8; nothing after it but whitespace), a list of at
//     most kMaxPostEntries entries, nested at most kMaxPostDepth deep (an entry needs 3);
//   - an integer beyond int64 is a uint64 when positive; beyond uint64, or below int64, the body
//     is refused as not valid JSON (simdjson cannot say where: no entry index);
//   - each entry is an object; keys other than those below are ignored (as for plugin output);
//     a key given twice counts once, the last one wins; for name, timestamp and tags a key whose
//     value is null counts as absent;
//   - name: a string matching [0-9A-Za-z._-]+ (at most 200 characters), renamed RUN.<name>;
//   - value: int64, uint64, double, bool or string, the metric's one field "value"; or
//     fields: a non-empty object of name ([0-9A-Za-z._-]+) -> such a value, several fields sorted
//     by name; exactly one of the keys value and fields, null or not;
//   - a string value (of value or of a field) that is a finite decimal number ("12.34", "-1e3",
//     ".5"; agent::parseDecimalNumber) becomes a double, as the loda pipeline stored it; other
//     strings ("abc", "inf", " 1", "1e999") stay strings;
//   - null: `"value": null` or `"fields": null` skips the entry (PostParseResult::skipped); in
//     fields a null member is left out, and fields whose members are all null skip the entry. A
//     skipped entry is checked like the others (its name, timestamp and tags);
//   - timestamp (optional, seconds; absent = 0, which the bus makes "now"): a number; a fraction is
//     cut off; outside int64 refused. Other units are fixed later by the bus, not here;
//   - tags (optional): an object of non-empty keys to string, number or bool values; numbers and
//     bools become their JSON text (a double its shortest round-trip form, e.g. 0.5, 1e+20). Tag
//     values are tidied (trimmed, inner spaces to '-') by the bus, not here.
#pragma once

#include <agent/Metric.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace agent::api {

inline constexpr std::size_t kMaxPostEntries = 1'000'000;
inline constexpr std::size_t kMaxPostDepth = 64;
// Bytes simdjson may read past the end of the body (SIMDJSON_PADDING, checked in PostBody.cpp).
inline constexpr std::size_t kPostBodyPadding = 64;

struct PostParseResult {
    bool ok = false;
    Batch metrics;           // empty unless ok
    std::size_t skipped = 0; // entries without a value (null), left out of metrics
    std::string error;       // why, unless ok
};

// The fast path (simdjson DOM). Copies the body into the parser's reused, padded buffer.
PostParseResult parsePostBody(std::string_view body, const std::string& ns);

// The same without the copy when the memory after the body is readable: `capacity` is the size of
// the allocation the body starts (e.g. std::string::capacity() after reserve(size + kPostBodyPadding)).
// Falls back to the copy when capacity < body.size() + kPostBodyPadding.
PostParseResult parsePaddedPostBody(std::string_view body, std::size_t capacity, const std::string& ns);

// The same semantics with Poco::JSON: slower, kept to cross-check the fast path in tests and fuzzing.
PostParseResult parsePostBodyWithPoco(std::string_view body, const std::string& ns);

} // namespace agent::api
