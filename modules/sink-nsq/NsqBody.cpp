// Message bodies for sink-nsq: the Go agent's JSON batch, or line protocol; chunked by size.
#include "NsqBody.h"

#include <charconv>
#include <cmath>
#include <type_traits>
#include <variant>

namespace agent::nsq {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\\ufffd";

template <typename T> void appendNumber(std::string& out, T value) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    (void)ec; // 32 bytes hold every 64-bit integer and the shortest round-trip form of every double
    out.append(buffer, end);
}

// The length of the valid UTF-8 sequence at `text[i]` (2 to 4), or 0 when it is not one:
// truncated, overlong, a surrogate, or above U+10FFFF.
std::size_t utf8SequenceLength(std::string_view text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        if (lead == 0xe0) low = 0xa0;  // overlong
        if (lead == 0xed) high = 0x9f; // surrogates
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        if (lead == 0xf0) low = 0x90;  // overlong
        if (lead == 0xf4) high = 0x8f; // above U+10FFFF
    } else {
        return 0;
    }
    if (i + length > text.size()) return 0;
    if (byte(i + 1) < low || byte(i + 1) > high) return 0;
    for (std::size_t k = 2; k < length; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
    }
    return length;
}

// A double that JSON readers cannot mistake for an integer: 3 is written 3.0.
void appendJsonDouble(std::string& out, double value) {
    const std::size_t start = out.size();
    appendNumber(out, value);
    if (out.find_first_of(".e", start) == std::string::npos) out += ".0";
}

bool encodableField(const Field& field) {
    const double* d = std::get_if<double>(&field.value);
    return d == nullptr || std::isfinite(*d);
}

void appendJsonValue(std::string& out, const FieldValue& value) {
    std::visit(
        [&out](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, bool>)
                out += v ? "true" : "false";
            else if constexpr (std::is_same_v<T, double>)
                appendJsonDouble(out, v);
            else if constexpr (std::is_same_v<T, std::string>)
                appendJsonString(out, v);
            else
                appendNumber(out, v); // int64, uint64
        },
        value);
}

// True when a later entry has the same key: JSON objects keep one value per key, the last one,
// as a map would.
template <typename Entry> bool shadowed(const std::vector<Entry>& entries, std::size_t i) {
    for (std::size_t k = i + 1; k < entries.size(); ++k) {
        if (entries[k].key == entries[i].key) return true;
    }
    return false;
}

} // namespace

std::string renderTemplate(std::string_view pattern, std::string_view ns) {
    constexpr std::string_view kPlaceholder = "{ns}";
    std::string out;
    std::size_t start = 0;
    for (std::size_t at = pattern.find(kPlaceholder); at != std::string_view::npos;
         at = pattern.find(kPlaceholder, start)) {
        out.append(pattern.substr(start, at - start));
        out.append(ns);
        start = at + kPlaceholder.size();
    }
    out.append(pattern.substr(start));
    return out;
}

void appendJsonString(std::string& out, std::string_view text) {
    out.push_back('"');
    std::size_t runStart = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            ++i;
            continue;
        }
        if (c >= 0x80) {
            const std::size_t length = utf8SequenceLength(text, i);
            if (length > 0) {
                i += length;
                continue;
            }
        }
        out.append(text.substr(runStart, i - runStart));
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0xf]);
            } else {
                out += kReplacement; // a byte that starts no valid UTF-8 sequence
            }
        }
        ++i;
        runStart = i;
    }
    out.append(text.substr(runStart));
    out.push_back('"');
}

bool appendJsonPoint(std::string& out, const Metric& metric) {
    const std::size_t start = out.size();
    out += "{\"measurement\":";
    appendJsonString(out, metric.name);
    out += ",\"timestamp\":";
    appendNumber(out, metric.timestamp);
    out += ",\"tags\":{";
    bool first = true;
    for (std::size_t i = 0; i < metric.tags.size(); ++i) {
        if (shadowed(metric.tags, i)) continue;
        if (!first) out.push_back(',');
        first = false;
        appendJsonString(out, metric.tags[i].key);
        out.push_back(':');
        appendJsonString(out, metric.tags[i].value);
    }
    out += "},\"fields\":{";
    first = true;
    for (std::size_t i = 0; i < metric.fields.size(); ++i) {
        const Field& field = metric.fields[i];
        if (!encodableField(field) || shadowed(metric.fields, i)) continue;
        if (!first) out.push_back(',');
        first = false;
        appendJsonString(out, field.key);
        out.push_back(':');
        appendJsonValue(out, field.value);
    }
    if (first) { // no field
        out.resize(start);
        return false;
    }
    out += "}}";
    return true;
}

NsqBodyEncoder::NsqBodyEncoder(BodyFormat format, std::string databaseTemplate)
    : format_(format), databaseTemplate_(std::move(databaseTemplate)) {}

EncodedMessages NsqBodyEncoder::encode(std::string_view ns, const std::vector<const Metric*>& points,
                                       std::size_t maxMessageBytes) const {
    // A message is head + point (separator point)... + tail.
    const bool json = format_ == BodyFormat::Json;
    std::string head;
    if (json) {
        head += "{\"database\":";
        appendJsonString(head, renderTemplate(databaseTemplate_, ns));
        head += ",\"retentionPolicy\":\"default\",\"precision\":\"s\",\"points\":[";
    }
    const std::string_view tail = json ? "]}" : "";
    const std::string_view separator = json ? "," : "";

    EncodedMessages encoded;
    std::string message;
    std::size_t pointsInMessage = 0;
    std::string point;
    const auto finish = [&] {
        if (pointsInMessage == 0) return;
        message += tail;
        encoded.messages.push_back(std::move(message));
        encoded.points.push_back(pointsInMessage);
        encoded.pointsEncoded += pointsInMessage;
        message.clear();
        pointsInMessage = 0;
    };
    for (const Metric* metric : points) {
        point.clear();
        const bool ok = json ? appendJsonPoint(point, *metric) : lineEncoder_.append(point, *metric);
        if (!ok) {
            ++encoded.unencodable;
            continue;
        }
        if (head.size() + point.size() + tail.size() > maxMessageBytes) {
            ++encoded.oversized;
            continue;
        }
        if (pointsInMessage > 0 && message.size() + separator.size() + point.size() + tail.size() > maxMessageBytes)
            finish();
        if (pointsInMessage == 0)
            message = head;
        else
            message += separator;
        message += point;
        ++pointsInMessage;
    }
    finish();
    return encoded;
}

} // namespace agent::nsq
