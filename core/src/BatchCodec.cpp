#include "BatchCodec.h"

#include <cassert>
#include <cstring>

namespace agent {
namespace {

// Field value type tags, fixed on disk: a spool written by one version is read by the next.
enum : std::uint8_t { kInt = 1, kUint = 2, kDouble = 3, kBoolFalse = 4, kBoolTrue = 5, kString = 6 };

std::uint64_t zigzag(std::int64_t v) { return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63); }
std::int64_t unzigzag(std::uint64_t v) { return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1); }

class Reader {
public:
    explicit Reader(std::string_view data) : data_(data) {}
    bool varint(std::uint64_t& value) {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= data_.size()) return false;
            const auto byte = static_cast<std::uint8_t>(data_[pos_++]);
            value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0) return true;
        }
        return false;
    }
    bool string(std::string& out) {
        std::uint64_t size = 0;
        if (!varint(size) || size > data_.size() - pos_) return false;
        out.assign(data_.data() + pos_, size);
        pos_ += size;
        return true;
    }
    bool byte(std::uint8_t& out) {
        if (pos_ >= data_.size()) return false;
        out = static_cast<std::uint8_t>(data_[pos_++]);
        return true;
    }
    bool fixed64(std::uint64_t& out) {
        if (data_.size() - pos_ < 8) return false;
        std::memcpy(&out, data_.data() + pos_, 8);
        pos_ += 8;
        return true;
    }
    // A count of items, each at least one byte long, cannot exceed what is left.
    bool count(std::uint64_t& out) { return varint(out) && out <= data_.size() - pos_; }
    bool done() const { return pos_ == data_.size(); }

private:
    std::string_view data_;
    std::size_t pos_ = 0;
};

} // namespace

namespace {

std::size_t varintSize(std::uint64_t value) {
    std::size_t size = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++size;
    }
    return size;
}

std::size_t stringSize(const std::string& text) { return varintSize(text.size()) + text.size(); }

// The exact size of a batch's encoding: the encoder writes it in one go, without growing.
std::size_t encodedSize(const Batch& batch) {
    std::size_t size = varintSize(batch.size());
    for (const Metric& metric : batch) {
        size += stringSize(metric.ns) + stringSize(metric.name) + varintSize(zigzag(metric.timestamp));
        size += varintSize(metric.tags.size());
        for (const Tag& tag : metric.tags) size += stringSize(tag.key) + stringSize(tag.value);
        size += varintSize(metric.fields.size());
        for (const Field& field : metric.fields) {
            size += stringSize(field.key) + 1;
            std::visit(
                [&size](const auto& v) {
                    using T = std::decay_t<decltype(v)>;
                    if constexpr (std::is_same_v<T, std::int64_t>) size += varintSize(zigzag(v));
                    else if constexpr (std::is_same_v<T, std::uint64_t>) size += varintSize(v);
                    else if constexpr (std::is_same_v<T, double>) size += 8;
                    else if constexpr (std::is_same_v<T, bool>) (void)v;
                    else size += stringSize(v);
                },
                field.value);
        }
    }
    return size;
}

// Writes into a buffer sized by encodedSize().
class Writer {
public:
    explicit Writer(char* at) : at_(at) {}
    void varint(std::uint64_t value) {
        while (value >= 0x80) {
            *at_++ = static_cast<char>(value | 0x80);
            value >>= 7;
        }
        *at_++ = static_cast<char>(value);
    }
    void string(const std::string& text) {
        varint(text.size());
        std::memcpy(at_, text.data(), text.size());
        at_ += text.size();
    }
    void byte(std::uint8_t value) { *at_++ = static_cast<char>(value); }
    void fixed64(std::uint64_t value) {
        std::memcpy(at_, &value, 8); // the spool is read back on the host that wrote it
        at_ += 8;
    }
    const char* at() const { return at_; }

private:
    char* at_;
};

} // namespace

void encodeBatch(const Batch& batch, std::string& out) {
    const std::size_t start = out.size();
    const std::size_t size = encodedSize(batch);
    out.resize(start + size);
    Writer w(out.data() + start);
    w.varint(batch.size());
    for (const Metric& metric : batch) {
        w.string(metric.ns);
        w.string(metric.name);
        w.varint(zigzag(metric.timestamp));
        w.varint(metric.tags.size());
        for (const Tag& tag : metric.tags) {
            w.string(tag.key);
            w.string(tag.value);
        }
        w.varint(metric.fields.size());
        for (const Field& field : metric.fields) {
            w.string(field.key);
            std::visit(
                [&w](const auto& v) {
                    using T = std::decay_t<decltype(v)>;
                    if constexpr (std::is_same_v<T, std::int64_t>) {
                        w.byte(kInt);
                        w.varint(zigzag(v));
                    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
                        w.byte(kUint);
                        w.varint(v);
                    } else if constexpr (std::is_same_v<T, double>) {
                        w.byte(kDouble);
                        std::uint64_t bits = 0;
                        std::memcpy(&bits, &v, 8);
                        w.fixed64(bits);
                    } else if constexpr (std::is_same_v<T, bool>) {
                        w.byte(v ? kBoolTrue : kBoolFalse);
                    } else {
                        w.byte(kString);
                        w.string(v);
                    }
                },
                field.value);
        }
    }
    assert(w.at() == out.data() + out.size());
}

bool decodeBatch(std::string_view data, Batch& out) {
    Reader in(data);
    out.clear();
    std::uint64_t metrics = 0;
    if (!in.count(metrics)) return false;
    out.reserve(metrics);
    for (std::uint64_t i = 0; i < metrics; ++i) {
        Metric metric;
        std::uint64_t timestamp = 0;
        std::uint64_t tags = 0;
        if (!in.string(metric.ns) || !in.string(metric.name) || !in.varint(timestamp) || !in.count(tags)) return false;
        metric.timestamp = unzigzag(timestamp);
        metric.tags.resize(tags);
        for (Tag& tag : metric.tags) {
            if (!in.string(tag.key) || !in.string(tag.value)) return false;
        }
        std::uint64_t fields = 0;
        if (!in.count(fields)) return false;
        metric.fields.resize(fields);
        for (Field& field : metric.fields) {
            std::uint8_t type = 0;
            if (!in.string(field.key) || !in.byte(type)) return false;
            std::uint64_t raw = 0;
            switch (type) {
            case kInt:
                if (!in.varint(raw)) return false;
                field.value = unzigzag(raw);
                break;
            case kUint:
                if (!in.varint(raw)) return false;
                field.value = raw;
                break;
            case kDouble: {
                if (!in.fixed64(raw)) return false;
                double d = 0;
                std::memcpy(&d, &raw, 8);
                field.value = d;
                break;
            }
            case kBoolFalse: field.value = false; break;
            case kBoolTrue: field.value = true; break;
            case kString: {
                std::string text;
                if (!in.string(text)) return false;
                field.value = std::move(text);
                break;
            }
            default: return false;
            }
        }
        out.push_back(std::move(metric));
    }
    return in.done();
}

} // namespace agent
