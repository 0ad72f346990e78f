// The /post body parser: simdjson for the API, Poco::JSON for cross-checking. Both walk the parsed
// document through one set of entry rules (toMetric below), so that they cannot drift apart in
// what they accept or in the errors they give; only the JSON syntax errors are worded by each
// library.
#include "PostBody.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>
#include <Poco/SharedPtr.h>

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

namespace agent::api {
namespace {

static_assert(kPostBodyPadding >= simdjson::SIMDJSON_PADDING, "kPostBodyPadding must cover simdjson's padding");

constexpr std::size_t kMaxNameLength = 200; // as for plugin output: RUN. + name stays short

// What the entry rules need to know about a JSON value. For name, timestamp and tags a null and an
// absent key are one case; for value and fields a null is a point without a value (toMetric).
enum class Kind { Null, Object, Array, String, Int64, UInt64, Double, Bool };

template <typename Value>
struct EntryKeys {
    std::optional<Value> name, value, fields, timestamp, tags;
};

// ---- simdjson side ----
struct SimdjsonDocument {
    using Value = simdjson::dom::element;

    static Kind kind(const Value& v) {
        switch (v.type()) {
        case simdjson::dom::element_type::ARRAY: return Kind::Array;
        case simdjson::dom::element_type::OBJECT: return Kind::Object;
        case simdjson::dom::element_type::INT64: return Kind::Int64;
        case simdjson::dom::element_type::UINT64: return Kind::UInt64;
        case simdjson::dom::element_type::DOUBLE: return Kind::Double;
        case simdjson::dom::element_type::STRING: return Kind::String;
        case simdjson::dom::element_type::BOOL: return Kind::Bool;
        case simdjson::dom::element_type::NULL_VALUE: return Kind::Null;
        }
        return Kind::Null;
    }
    // The accessors are only called after kind() said which one applies.
    static std::string_view string(const Value& v) { return v.get_string().value_unsafe(); }
    static std::int64_t int64(const Value& v) { return v.get_int64().value_unsafe(); }
    static std::uint64_t uint64(const Value& v) { return v.get_uint64().value_unsafe(); }
    static double number(const Value& v) { return v.get_double().value_unsafe(); }
    static bool boolean(const Value& v) { return v.get_bool().value_unsafe(); }

    // An object's members sorted by key, a repeated key once with its last value (as Poco's map has
    // them). One allocation: sorted and deduplicated in place. Tags and fields objects are small,
    // so they are sorted by insertion; a big one (a hostile body) by a stable merge sort.
    static std::vector<std::pair<std::string_view, Value>> members(const Value& v) {
        constexpr std::size_t kInsertionSortUpTo = 16;
        std::vector<std::pair<std::string_view, Value>> all;
        const simdjson::dom::object object = v.get_object().value_unsafe(); // a copy: the result is a temporary
        all.reserve(object.size());
        for (const simdjson::dom::key_value_pair field : object) all.emplace_back(field.key, field.value);
        const auto byKey = [](const auto& a, const auto& b) { return a.first < b.first; };
        if (all.size() <= kInsertionSortUpTo) {
            for (std::size_t i = 1; i < all.size(); ++i) {
                for (std::size_t j = i; j > 0 && byKey(all[j], all[j - 1]); --j) std::swap(all[j], all[j - 1]);
            }
        } else {
            std::stable_sort(all.begin(), all.end(), byKey);
        }
        std::size_t kept = 0;
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (i + 1 < all.size() && all[i + 1].first == all[i].first) continue;
            all[kept++] = all[i];
        }
        all.erase(all.begin() + static_cast<std::ptrdiff_t>(kept), all.end());
        return all;
    }

    static bool entryKeys(const Value& entry, EntryKeys<Value>& keys) {
        simdjson::dom::object object;
        if (entry.get_object().get(object) != simdjson::SUCCESS) return false;
        for (const simdjson::dom::key_value_pair field : object) {
            const std::string_view key = field.key;
            if (key == "name") keys.name = field.value;
            else if (key == "value") keys.value = field.value;
            else if (key == "fields") keys.fields = field.value;
            else if (key == "timestamp") keys.timestamp = field.value;
            else if (key == "tags") keys.tags = field.value;
        }
        return true;
    }
};

// ---- Poco side ----
struct PocoDocument {
    using Value = Poco::Dynamic::Var;

    static Kind kind(const Value& v) {
        if (v.isEmpty()) return Kind::Null;
        if (v.type() == typeid(Poco::JSON::Object::Ptr)) return Kind::Object;
        if (v.type() == typeid(Poco::JSON::Array::Ptr)) return Kind::Array;
        if (v.isString()) return Kind::String;
        if (v.isBoolean()) return Kind::Bool;
        if (v.isInteger()) return v.isSigned() ? Kind::Int64 : Kind::UInt64;
        if (v.isNumeric()) return Kind::Double;
        return Kind::Array; // no other type comes out of Poco's parser; refused like a list if it did
    }
    static std::string_view string(const Value& v) { return v.extract<std::string>(); }
    static std::int64_t int64(const Value& v) { return v.convert<Poco::Int64>(); }
    static std::uint64_t uint64(const Value& v) { return v.convert<Poco::UInt64>(); }
    static double number(const Value& v) { return v.convert<double>(); }
    static bool boolean(const Value& v) { return v.extract<bool>(); }

    // Poco keeps an object's members in a std::map: sorted by key, a repeated key's last value.
    static std::vector<std::pair<std::string_view, Value>> members(const Value& v) {
        std::vector<std::pair<std::string_view, Value>> all;
        for (const auto& [key, value] : *v.extract<Poco::JSON::Object::Ptr>()) all.emplace_back(key, value);
        return all;
    }

    static bool entryKeys(const Value& entry, EntryKeys<Value>& keys) {
        if (entry.type() != typeid(Poco::JSON::Object::Ptr)) return false;
        const Poco::JSON::Object& object = *entry.extract<Poco::JSON::Object::Ptr>();
        const auto take = [&object](const char* key, std::optional<Value>& into) {
            if (object.has(key)) into = object.get(key);
        };
        take("name", keys.name);
        take("value", keys.value);
        take("fields", keys.fields);
        take("timestamp", keys.timestamp);
        take("tags", keys.tags);
        return true;
    }
};

// ---- the entry rules, one copy for both ----
const char* kindName(Kind kind) {
    switch (kind) {
    case Kind::Null: return "null";
    case Kind::Object: return "an object";
    case Kind::Array: return "a list";
    case Kind::String: return "a string";
    case Kind::Bool: return "a bool";
    case Kind::Int64:
    case Kind::UInt64:
    case Kind::Double: return "a number";
    }
    return "?";
}

// A bad name or key quoted in an error, cut short: it comes from the client and may be anything.
std::string quoted(std::string_view text) {
    constexpr std::size_t kShown = 64;
    std::string out;
    out.reserve(kShown + 5);
    out.append("\"").append(text.substr(0, kShown)).append(text.size() > kShown ? "...\"" : "\"");
    return out;
}

template <typename Doc>
std::optional<FieldValue> scalar(const typename Doc::Value& v) {
    switch (Doc::kind(v)) {
    case Kind::String: return FieldValue(std::string(Doc::string(v)));
    case Kind::Int64: return FieldValue(Doc::int64(v));
    case Kind::UInt64: return FieldValue(Doc::uint64(v));
    case Kind::Double: return FieldValue(Doc::number(v));
    case Kind::Bool: return FieldValue(Doc::boolean(v));
    default: return std::nullopt;
    }
}

// A field's value: a scalar, and a string that is a finite decimal number ("12.34") a double, as
// the loda pipeline behind the Go agent stored it; any other string stays a string.
template <typename Doc>
std::optional<FieldValue> fieldValue(const typename Doc::Value& v) {
    if (Doc::kind(v) == Kind::String) {
        const std::string_view text = Doc::string(v);
        if (double number = 0; parseDecimalNumber(text, number)) return FieldValue(number);
        return FieldValue(std::string(text));
    }
    return scalar<Doc>(v);
}

std::string tagText(FieldValue&& value) {
    struct Text {
        std::string operator()(std::string&& s) const { return std::move(s); }
        std::string operator()(std::int64_t n) const { return std::to_string(n); }
        std::string operator()(std::uint64_t n) const { return std::to_string(n); }
        std::string operator()(bool b) const { return b ? "true" : "false"; }
        std::string operator()(double d) const {
            char buffer[32];
            const auto end = std::to_chars(buffer, buffer + sizeof buffer, d).ptr; // shortest round-trip
            return std::string(buffer, end);
        }
    };
    return std::visit(Text{}, std::move(value));
}

// What became of one entry.
enum class Outcome {
    Taken,   // a metric
    Skipped, // a point without a value (null): left out, counted, the rest of the body is taken
    Bad,     // refuses the whole body
};

// The fields object of an entry into `out`; a null member is left out. False and `problem` when bad.
template <typename Doc>
bool readFields(const typename Doc::Value& fields, Metric& out, std::string& problem) {
    auto members = Doc::members(fields);
    if (members.empty()) {
        problem = "fields is empty";
        return false;
    }
    out.fields.reserve(members.size());
    for (auto& [key, member] : members) {
        if (!isValidName(key, kMaxNameLength)) {
            problem = "field name " + quoted(key) + " does not match [0-9A-Za-z._-]+ (at most 200 characters)";
            return false;
        }
        if (Doc::kind(member) == Kind::Null) continue;
        std::optional<FieldValue> field = fieldValue<Doc>(member);
        if (!field) {
            problem = "field " + quoted(key) + " is " + kindName(Doc::kind(member)) + ", not a number, bool or string";
            return false;
        }
        out.fields.push_back(Field{std::string(key), std::move(*field)});
    }
    return true;
}

// One entry to one metric; the error (with the entry's index) when the entry is bad. A skipped
// entry is checked all the same: a bad name or tag refuses the body even without a value.
template <typename Doc>
Outcome toMetric(const typename Doc::Value& entry, std::size_t index, const std::string& ns, Metric& out,
                 std::string& error) {
    using Value = typename Doc::Value;
    const auto fail = [&](const std::string& problem) {
        error = "entry " + std::to_string(index) + ": " + problem;
        return Outcome::Bad;
    };
    EntryKeys<Value> keys;
    if (!Doc::entryKeys(entry, keys)) return fail("not an object but " + std::string(kindName(Doc::kind(entry))));
    const auto kindOf = [](const std::optional<Value>& v) { return v ? Doc::kind(*v) : Kind::Null; };

    const Kind nameKind = kindOf(keys.name);
    if (nameKind == Kind::Null) return fail("name missing");
    if (nameKind != Kind::String) return fail("name is " + std::string(kindName(nameKind)) + ", not a string");
    const std::string_view name = Doc::string(*keys.name);
    if (!isValidName(name, kMaxNameLength))
        return fail("name " + quoted(name) + " does not match [0-9A-Za-z._-]+ (at most 200 characters)");

    // value and fields count as given even when null: a null is a point without a value (the Go
    // agent's clients send them; its pipeline left them out), not a missing key.
    if (keys.value && keys.fields) return fail("both value and fields; give one");
    if (!keys.value && !keys.fields) return fail("value missing and no fields");

    out = Metric();
    out.tags.reserve(4); // as makePoint: room for the host tag the bus adds
    out.ns = ns;
    out.name.reserve(4 + name.size());
    out.name.append("RUN.").append(name);
    if (const Kind valueKind = kindOf(keys.value); keys.value && valueKind != Kind::Null) {
        std::optional<FieldValue> field = fieldValue<Doc>(*keys.value);
        if (!field) return fail("value is " + std::string(kindName(valueKind)) + ", not a number, bool or string");
        out.fields.push_back(Field{"value", std::move(*field)});
    } else if (const Kind fieldsKind = kindOf(keys.fields); keys.fields && fieldsKind != Kind::Null) {
        if (fieldsKind != Kind::Object) return fail("fields is " + std::string(kindName(fieldsKind)) + ", not an object");
        if (std::string problem; !readFields<Doc>(*keys.fields, out, problem)) return fail(problem);
    }

    switch (const Kind kind = kindOf(keys.timestamp)) {
    case Kind::Null: break; // absent: the bus makes it "now"
    case Kind::Int64: out.timestamp = Doc::int64(*keys.timestamp); break;
    case Kind::UInt64: return fail("timestamp out of range");
    case Kind::Double: {
        const double seconds = Doc::number(*keys.timestamp);
        // [-2^63, 2^63): the doubles whose integer part fits an int64
        if (!(seconds >= -9223372036854775808.0 && seconds < 9223372036854775808.0)) return fail("timestamp out of range");
        out.timestamp = static_cast<std::int64_t>(std::trunc(seconds));
        break;
    }
    default: return fail("timestamp is " + std::string(kindName(kind)) + ", not a number");
    }

    const Kind tagsKind = kindOf(keys.tags);
    if (tagsKind != Kind::Null) {
        if (tagsKind != Kind::Object) return fail("tags is " + std::string(kindName(tagsKind)) + ", not an object");
        for (auto& [key, member] : Doc::members(*keys.tags)) {
            if (key.empty()) return fail("a tag has an empty key");
            std::optional<FieldValue> tag = scalar<Doc>(member);
            if (!tag) return fail("tag " + quoted(key) + " is " + kindName(Doc::kind(member)) + ", not a string, number or bool");
            out.setTag(std::string(key), tagText(std::move(*tag)));
        }
    }
    return out.fields.empty() ? Outcome::Skipped : Outcome::Taken;
}

// Files an entry's outcome: its metric stays in metrics[taken] (the slot the next entry would
// otherwise reuse), a skipped entry is counted. False when the entry refuses the body.
bool record(Outcome outcome, PostParseResult& result, std::size_t& taken) {
    switch (outcome) {
    case Outcome::Taken: ++taken; return true;
    case Outcome::Skipped: ++result.skipped; return true;
    case Outcome::Bad: return false;
    }
    return false;
}

PostParseResult refuse(std::string error) {
    PostParseResult result;
    result.error = std::move(error);
    return result;
}

// The checks both parsers make before parsing: a blank body, and a body that cannot be a list
// (Poco refuses a scalar at the top with a syntax error; this keeps the message one).
std::optional<std::string> precheck(std::string_view body) {
    const std::size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return "empty body";
    if (body[first] != '[') return "body is not a JSON list";
    return std::nullopt;
}

std::string tooManyEntries() { return "body has more than " + std::to_string(kMaxPostEntries) + " entries"; }

// ---- simdjson entry point ----
simdjson::dom::parser makeParser(std::size_t capacity) {
    simdjson::dom::parser parser;
    if (const auto error = parser.allocate(capacity, kMaxPostDepth); error != simdjson::SUCCESS)
        throw std::bad_alloc(); // allocate fails only for want of memory
    return parser;
}

PostParseResult parseWithSimdjson(std::string_view body, bool padded, const std::string& ns) {
    if (auto problem = precheck(body)) return refuse(std::move(*problem));
    // One parser per thread, reused (its buffers grow to the largest body seen); a body beyond 1 MiB
    // gets a parser of its own so that a rare big post does not pin its memory to the thread.
    constexpr std::size_t kReusedCapacity = 1 << 20;
    thread_local simdjson::dom::parser reused = makeParser(64 * 1024);
    std::optional<simdjson::dom::parser> own;
    simdjson::dom::parser& parser = body.size() <= kReusedCapacity ? reused : own.emplace(makeParser(body.size()));

    simdjson::dom::element root;
    if (const auto error = parser.parse(body.data(), body.size(), !padded).get(root); error != simdjson::SUCCESS)
        return refuse("body is not valid JSON: " + std::string(simdjson::error_message(error)));
    simdjson::dom::array list;
    if (root.get_array().get(list) != simdjson::SUCCESS) return refuse("body is not a JSON list");
    if (list.size() > kMaxPostEntries) return refuse(tooManyEntries()); // size() saturates at 2^24-1: still above

    PostParseResult result;
    result.metrics.resize(list.size());
    std::size_t index = 0;
    std::size_t taken = 0;
    for (const simdjson::dom::element entry : list) {
        const Outcome outcome = toMetric<SimdjsonDocument>(entry, index, ns, result.metrics[taken], result.error);
        if (!record(outcome, result, taken)) return refuse(std::move(result.error));
        ++index;
    }
    result.metrics.resize(taken);
    result.ok = true;
    return result;
}

// ---- Poco entry point ----
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// An integer token (with its sign) beyond int64 below zero or beyond uint64 above.
bool integerOutOfRange(std::string_view token) {
    const bool negative = !token.empty() && token[0] == '-';
    const std::string_view digits = token.substr(negative ? 1 : 0);
    const std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
    return digits.size() > limit.size() || (digits.size() == limit.size() && digits > limit);
}

// The integers of the body, in the order they appear, read exactly (see ExactIntegers).
using Integer = std::variant<std::int64_t, std::uint64_t>;

// Poco 1.11 wraps integers beyond 64 bits around (2^64 becomes 0), stops at a NUL byte, lets bad
// UTF-8 through and has no depth limit; this pass over the text refuses what simdjson refuses there
// (an error), and collects the integers for ExactIntegers. Only its verdict on valid JSON matters:
// Poco refuses the rest itself. The depth rule is simdjson's: a value inside kMaxPostDepth containers
// is refused.
std::string checkWhatPocoMisses(std::string_view body, std::vector<Integer>& integers) {
    if (body.find('\0') != std::string_view::npos) return "a NUL byte";
    if (!simdjson::validate_utf8(body.data(), body.size())) return "the input is not valid UTF-8";
    std::size_t open = 0;
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ':') continue;
        if (c == ']' || c == '}') {
            if (open > 0) --open;
            continue;
        }
        if (open >= kMaxPostDepth) return "nested deeper than " + std::to_string(kMaxPostDepth);
        if (c == '[' || c == '{') {
            ++open;
        } else if (c == '"') {
            for (++i; i < body.size() && body[i] != '"'; ++i) {
                if (body[i] == '\\') ++i;
            }
        } else if (c == '-' || isDigit(c)) {
            std::size_t end = i + 1;
            bool integer = true;
            for (; end < body.size(); ++end) {
                const char d = body[end];
                if (d == '.' || d == 'e' || d == 'E' || d == '+') integer = false;
                else if (!isDigit(d) && d != '-') break;
            }
            if (integer) {
                const std::string_view token = body.substr(i, end - i);
                if (integerOutOfRange(token)) return "integer out of range";
                std::int64_t signedValue = 0;
                std::uint64_t unsignedValue = 0;
                if (std::from_chars(token.data(), token.data() + token.size(), signedValue).ec == std::errc())
                    integers.emplace_back(signedValue);
                else if (std::from_chars(token.data(), token.data() + token.size(), unsignedValue).ec == std::errc())
                    integers.emplace_back(unsignedValue);
            }
            i = end - 1;
        }
    }
    return {};
}

// Poco 1.11 also misreads some integers near -2^63 (-9223372036854032967 becomes
// -9223372036854033408): its parser's handler gets each integer in the order of the text, and this
// one puts the exact value, read by checkWhatPocoMisses, in its place.
class ExactIntegers : public Poco::JSON::ParseHandler {
public:
    explicit ExactIntegers(std::vector<Integer> integers) : integers_(std::move(integers)) {}
    void value(int v) override { exact(static_cast<std::int64_t>(v)); }
    void value(unsigned v) override { exact(static_cast<std::uint64_t>(v)); }
    void value(Poco::Int64 v) override { exact(static_cast<std::int64_t>(v)); }
    void value(Poco::UInt64 v) override { exact(static_cast<std::uint64_t>(v)); }
    using Poco::JSON::ParseHandler::value;

private:
    void exact(Integer poco) {
        // The lists only part on a text Poco refuses anyway; then Poco's value stands until it does.
        const Integer& integer = next_ < integers_.size() ? integers_[next_++] : poco;
        if (const auto* n = std::get_if<std::int64_t>(&integer)) ParseHandler::value(static_cast<Poco::Int64>(*n));
        else ParseHandler::value(static_cast<Poco::UInt64>(std::get<std::uint64_t>(integer)));
    }

    std::vector<Integer> integers_;
    std::size_t next_ = 0;
};

} // namespace

PostParseResult parsePostBody(std::string_view body, const std::string& ns) {
    return parseWithSimdjson(body, false, ns);
}

PostParseResult parsePaddedPostBody(std::string_view body, std::size_t capacity, const std::string& ns) {
    return parseWithSimdjson(body, capacity >= body.size() && capacity - body.size() >= kPostBodyPadding, ns);
}

PostParseResult parsePostBodyWithPoco(std::string_view body, const std::string& ns) {
    if (auto problem = precheck(body)) return refuse(std::move(*problem));
    std::vector<Integer> integers;
    if (std::string problem = checkWhatPocoMisses(body, integers); !problem.empty())
        return refuse("body is not valid JSON: " + problem);
    Poco::Dynamic::Var root;
    try {
        Poco::JSON::Parser parser(Poco::makeShared<ExactIntegers>(std::move(integers)));
        root = parser.parse(std::string(body));
    } catch (const Poco::Exception& e) {
        return refuse("body is not valid JSON: " + e.displayText());
    }
    if (root.type() != typeid(Poco::JSON::Array::Ptr)) return refuse("body is not a JSON list");
    const Poco::JSON::Array& list = *root.extract<Poco::JSON::Array::Ptr>();
    if (list.size() > kMaxPostEntries) return refuse(tooManyEntries());

    PostParseResult result;
    result.metrics.resize(list.size());
    std::size_t taken = 0;
    for (std::size_t index = 0; index < list.size(); ++index) {
        const Outcome outcome =
            toMetric<PocoDocument>(list.get(static_cast<unsigned>(index)), index, ns, result.metrics[taken], result.error);
        if (!record(outcome, result, taken)) return refuse(std::move(result.error));
    }
    result.metrics.resize(taken);
    result.ok = true;
    return result;
}

} // namespace agent::api
