// InfluxDB line protocol, as the reference specifies it:
//   measurement[,tag=value...] field=value[,field=value...] timestamp
// Measurement: escape comma and space. Tag keys, tag values, field keys: escape comma, equals
// sign and space. String field values: double-quoted, escape double quote and backslash.
// Integers carry an `i` suffix (unsigned a `u` would need InfluxDB 1.8+ with a flag, so uint64 is
// written as a signed integer when it fits and as a float otherwise). NaN and infinities have no
// representation and are left out. Newlines cannot be escaped in keys, so they become spaces
// (escaped); in string values they are legal inside the quotes.
#include <agent/LineProtocol.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace agent {
namespace {

// What a byte may need in a name, key or tag value: kSpecial always takes a backslash, kEquals
// only where '=' must be escaped, kBackslash one when a special follows it or it ends the text.
constexpr unsigned char kSpecial = 1, kEquals = 2, kBackslash = 4;
constexpr std::array<unsigned char, 256> kEscapeClass = [] {
    std::array<unsigned char, 256> table{};
    for (const char c : {',', ' ', '\n', '\r', '\t'}) table[static_cast<unsigned char>(c)] = kSpecial;
    table[static_cast<unsigned char>('=')] = kEquals;
    table[static_cast<unsigned char>('\\')] = kBackslash;
    return table;
}();

// Appends `text`, escaping what line protocol needs; runs with nothing to escape are appended
// in one piece (most names and values have nothing to escape). A backslash right before a
// character we escape, or at the very end, would itself escape that character (or the separator
// after the text) in InfluxDB's parser, so it is doubled: the line stays parseable, and the value
// reads back with the backslash doubled, the one case line protocol cannot carry exactly.
void appendEscaped(std::string& out, std::string_view text, bool escapeEquals) {
    // Most names and tags need nothing: one look-up per byte, then one append.
    const unsigned char mask = kSpecial | kBackslash | (escapeEquals ? kEquals : 0);
    std::size_t first = 0;
    while (first < text.size() && (kEscapeClass[static_cast<unsigned char>(text[first])] & mask) == 0) ++first;
    if (first == text.size()) {
        out.append(text);
        return;
    }
    auto special = [escapeEquals](char c) {
        return c == ',' || c == ' ' || (escapeEquals && c == '=') || c == '\n' || c == '\r' || c == '\t';
    };
    std::size_t runStart = 0;
    for (std::size_t i = first; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\\' && (i + 1 == text.size() || special(text[i + 1]))) {
            out.append(text.data() + runStart, i + 1 - runStart);
            out.push_back('\\');
            runStart = i + 1;
            continue;
        }
        if (!special(c)) continue;
        out.append(text.data() + runStart, i - runStart);
        out.push_back('\\');
        out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
        runStart = i + 1;
    }
    out.append(text.data() + runStart, text.size() - runStart);
}

template <typename T>
void appendNumber(std::string& out, T value) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    (void)ec; // 32 bytes hold every int64 and the shortest round-trip form of every double
    out.append(buffer, end);
}

// Appends "key=value"; returns false (appending nothing) for values line protocol cannot carry.
bool appendField(std::string& out, const Field& field) {
    if (const double* d = std::get_if<double>(&field.value); d != nullptr && !std::isfinite(*d)) return false;
    appendEscaped(out, field.key, true);
    out.push_back('=');
    std::visit(
        [&out](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::int64_t>) {
                appendNumber(out, v);
                out.push_back('i');
            } else if constexpr (std::is_same_v<T, std::uint64_t>) {
                if (v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                    appendNumber(out, static_cast<std::int64_t>(v));
                    out.push_back('i');
                } else {
                    appendNumber(out, static_cast<double>(v));
                }
            } else if constexpr (std::is_same_v<T, double>) {
                appendNumber(out, v);
            } else if constexpr (std::is_same_v<T, bool>) {
                out.append(v ? "true" : "false");
            } else {
                out.push_back('"');
                std::size_t runStart = 0;
                for (std::size_t i = 0; i < v.size(); ++i) {
                    if (v[i] != '"' && v[i] != '\\') continue;
                    out.append(v, runStart, i - runStart);
                    out.push_back('\\');
                    runStart = i; // the quote or backslash itself starts the next run
                }
                out.append(v, runStart, std::string::npos);
                out.push_back('"');
            }
        },
        field.value);
    return true;
}

} // namespace

bool LineProtocolEncoder::append(std::string& out, const Metric& metric) const {
    const std::size_t start = out.size();
    appendEscaped(out, metric.name, false);
    if (!options_.namespaceTag.empty() && !metric.ns.empty()) {
        out.push_back(',');
        appendEscaped(out, options_.namespaceTag, true);
        out.push_back('=');
        appendEscaped(out, metric.ns, true);
    }
    for (const Tag& tag : metric.tags) {
        if (tag.value.empty()) continue; // an empty tag value is invalid line protocol
        out.push_back(',');
        appendEscaped(out, tag.key, true);
        out.push_back('=');
        appendEscaped(out, tag.value, true);
    }
    char separator = ' ';
    bool anyField = false;
    for (const Field& field : metric.fields) {
        const std::size_t before = out.size();
        out.push_back(separator);
        if (appendField(out, field)) {
            separator = ',';
            anyField = true;
        } else {
            out.resize(before);
        }
    }
    if (!anyField) {
        out.resize(start);
        return false;
    }
    out.push_back(' ');
    appendNumber(out, metric.timestamp);
    out.push_back('\n');
    return true;
}

std::size_t LineProtocolEncoder::append(std::string& out, const Batch& batch) const {
    std::size_t skipped = 0;
    for (const Metric& metric : batch) {
        if (!append(out, metric)) ++skipped;
    }
    return skipped;
}

} // namespace agent
