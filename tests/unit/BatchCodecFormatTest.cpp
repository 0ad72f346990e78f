// BatchCodec's bytes are a format on disk (a spool written by one version is read by the next):
// the encoding of a known batch stays byte for byte the same, and it appends to what `out` holds.
#include "BatchCodec.h"

#include <gtest/gtest.h>

TEST(BatchCodec, EncodingIsByteForByteTheSpoolFormat) {
    agent::Metric metric = agent::makePoint("n", "m", std::int64_t{-1}, 300);
    metric.setTag("k", "v");
    metric.addField("d", 0.5);
    metric.addField("s", std::string("xy"));
    metric.addField("b", true);
    metric.addField("u", std::uint64_t{128});
    std::string out = "prefix";
    agent::encodeBatch(agent::Batch{metric}, out);
    static const char bytes[] = "prefix"
                                "\x01"                       // one metric
                                "\x01n\x01m"                 // ns, name
                                "\xd8\x04"                   // timestamp 300, zigzag varint
                                "\x01\x01k\x01v"             // one tag
                                "\x05"                       // five fields
                                "\x05value\x01\x01"          // int64 -1
                                "\x01" "d\x03" "\x00\x00\x00\x00\x00\x00\xe0\x3f" // double 0.5
                                "\x01s\x06\x02xy"            // string
                                "\x01" "b\x05"               // true
                                "\x01u\x02\x80\x01";         // uint64 128
    EXPECT_EQ(out, std::string(bytes, sizeof bytes - 1));
    agent::Batch decoded;
    ASSERT_TRUE(agent::decodeBatch(std::string_view(out).substr(6), decoded));
    ASSERT_EQ(decoded.size(), 1u);
    EXPECT_EQ(decoded[0].fields.size(), 5u);
}
