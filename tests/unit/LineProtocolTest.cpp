// LineProtocolEncoder: the escaping rules of the InfluxDB line-protocol reference.
#include <agent/LineProtocol.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using agent::Batch;
using agent::LineProtocolEncoder;
using agent::Metric;

namespace {

std::string encode(const Metric& metric, LineProtocolEncoder::Options options = {}) {
    std::string out;
    LineProtocolEncoder(options).append(out, metric);
    return out;
}

Metric point(const std::string& name) {
    Metric m;
    m.name = name;
    m.timestamp = 1700000000;
    return m;
}

} // namespace

TEST(LineProtocol, WritesMeasurementTagsFieldsAndTimestamp) {
    Metric m = point("cpu.idle");
    m.setTag("host", "web1");
    m.setTag("core", "0");
    m.addField("value", 99.5);
    EXPECT_EQ(encode(m), "cpu.idle,core=0,host=web1 value=99.5 1700000000\n");
}

TEST(LineProtocol, IntegersCarryTheISuffixAndBooleansAreWords) {
    Metric m = point("m");
    m.addField("a", std::int64_t{-42});
    m.addField("b", std::uint64_t{7});
    m.addField("c", true);
    m.addField("d", false);
    EXPECT_EQ(encode(m), "m a=-42i,b=7i,c=true,d=false 1700000000\n");
}

TEST(LineProtocol, UnsignedAboveInt64MaxIsWrittenAsAFloat) {
    Metric m = point("m");
    m.addField("big", std::numeric_limits<std::uint64_t>::max());
    // No `i` suffix: InfluxDB reads it as a float (2^64, the nearest double).
    EXPECT_EQ(encode(m), "m big=18446744073709551616 1700000000\n");
}

TEST(LineProtocol, MeasurementEscapesCommaAndSpaceButNotEquals) {
    Metric m = point("a,b c=d");
    m.addField("value", 1.0);
    EXPECT_EQ(encode(m), "a\\,b\\ c=d value=1 1700000000\n");
}

TEST(LineProtocol, TagKeysValuesAndFieldKeysEscapeCommaEqualsAndSpace) {
    Metric m = point("m");
    m.setTag("k,1=x y", "v,1=x y");
    m.addField("f,1=x y", 1.0);
    EXPECT_EQ(encode(m), "m,k\\,1\\=x\\ y=v\\,1\\=x\\ y f\\,1\\=x\\ y=1 1700000000\n");
}

TEST(LineProtocol, StringFieldsAreQuotedWithQuoteAndBackslashEscaped) {
    Metric m = point("m");
    m.addField("s", std::string("say \"hi\" \\o/, a=b"));
    EXPECT_EQ(encode(m), "m s=\"say \\\"hi\\\" \\\\o/, a=b\" 1700000000\n");
}

TEST(LineProtocol, NewlinesInKeysCannotBreakTheLine) {
    Metric m = point("m\nx");
    m.setTag("t", "a\nb");
    m.addField("value", 1.0);
    const std::string line = encode(m);
    EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LineProtocol, NaNAndInfinityAreLeftOut) {
    Metric m = point("m");
    m.addField("nan", std::nan(""));
    m.addField("ok", 1.0);
    m.addField("inf", std::numeric_limits<double>::infinity());
    EXPECT_EQ(encode(m), "m ok=1 1700000000\n");
}

TEST(LineProtocol, PointWithNoEncodableFieldWritesNothingAndIsCounted) {
    Metric onlyNaN = point("m");
    onlyNaN.addField("value", std::nan(""));
    Metric good = point("g");
    good.addField("value", 2.0);
    Batch batch{onlyNaN, point("nofields"), good};
    std::string out;
    EXPECT_EQ(LineProtocolEncoder().append(out, batch), 2u);
    EXPECT_EQ(out, "g value=2 1700000000\n");
}

TEST(LineProtocol, EmptyTagValuesAreSkipped) {
    Metric m = point("m");
    m.setTag("empty", "");
    m.setTag("host", "h");
    m.addField("value", 1.0);
    EXPECT_EQ(encode(m), "m,host=h value=1 1700000000\n");
}

TEST(LineProtocol, NamespaceTagIsWrittenFirstWhenAsked) {
    Metric m = point("m");
    m.ns = "team.a";
    m.setTag("host", "h");
    m.addField("value", 1.0);
    EXPECT_EQ(encode(m, {"ns"}), "m,ns=team.a,host=h value=1 1700000000\n");
    EXPECT_EQ(encode(m), "m,host=h value=1 1700000000\n");
}

TEST(LineProtocol, AppendsToWhatTheBufferHolds) {
    Metric m = point("m");
    m.addField("value", 1.0);
    std::string out = "previous\n";
    LineProtocolEncoder().append(out, m);
    EXPECT_EQ(out, "previous\nm value=1 1700000000\n");
}

TEST(LineProtocol, BackslashBeforeASeparatorOrAtTheEndIsDoubledSoTheLineStillParses) {
    Metric m = point("m\\");
    m.setTag("k", "ends\\");
    m.setTag("j", "a\\,b");
    m.setTag("i", "mid\\dle");
    m.addField("value", 1.0);
    EXPECT_EQ(encode(m), "m\\\\,i=mid\\dle,j=a\\\\\\,b,k=ends\\\\ value=1 1700000000\n");
}
