// source-example: the smallest complete source, written the way a third party writes a module
// against an installed agent SDK. Every `interval` seconds it publishes one point,
// `example.value`, whose field is the configured `value` and whose tag `label` is the configured
// `label`. It touches nothing but its own config section, the bus and its health.
#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/Metric.h>
#include <agent/Module.h>
#include <agent/ModuleConfig.h>

#include <Poco/ClassLibrary.h>
#include <Poco/JSON/Object.h>
#include <Poco/SharedPtr.h>
#include <Poco/Timespan.h>
#include <Poco/Types.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <string>
#include <utility>

namespace {

// An interval longer than a day is almost certainly a typo (milliseconds for seconds).
constexpr std::int64_t kMaxIntervalSeconds = 86'400;

// The one table the core validates types against, takes defaults from and `agent check` reads.
const agent::ConfigSchema kSchema = {
    {"value", agent::ConfigType::Integer, "7", "the value of the example.value point (0 or more)"},
    {"interval", agent::ConfigType::Integer, "10", "seconds between collections (1 to 86400)"},
    {"label", agent::ConfigType::String, "example", "value of the point's `label` tag"},
};

class SourceExample : public agent::Source {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }

    // The core has already checked the types; this checks the ranges, and reports every bad key
    // at once with the file and line where it was set.
    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        const std::int64_t value = config.getInt("value");
        const std::int64_t interval = config.getInt("interval");
        const std::string label = config.getString("label");
        if (value < 0) errors.add(config, "value", "must be 0 or more, got " + std::to_string(value));
        if (interval < 1 || interval > kMaxIntervalSeconds)
            errors.add(config, "interval",
                       "must be between 1 and " + std::to_string(kMaxIntervalSeconds) + " (seconds), got " +
                           std::to_string(interval));
        if (!agent::isValidName(label, 128))
            errors.add(config, "label",
                       "\"" + label + "\" is not a valid tag value ([0-9A-Za-z._-]+, at most 128 characters)");
        errors.throwIfAny();
        // configure() returns before start(), and collect() only runs after start(): these stay
        // read-only while collect() reads them from a worker thread.
        value_ = value;
        intervalSeconds_ = interval;
        label_ = label;
    }

    void start(agent::Context& context) override {
        context_ = &context;
        context.logger().information("publishing example.value=%s every %s s", std::to_string(value_),
                                     std::to_string(intervalSeconds_));
    }

    Poco::Timespan collectInterval() const override { return Poco::Timespan(static_cast<long>(intervalSeconds_), 0); }

    void collect(agent::Batch& out) override {
        // The core adds the host tag and checks the timestamp before the point reaches a sink.
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        agent::Metric point = agent::makePoint("", "example.value", value_, now);
        point.setTag("label", label_);
        out.push_back(std::move(point));

        const Poco::UInt64 collections = ++collections_;
        if (context_ == nullptr) return; // driven by hand, without start()
        Poco::JSON::Object::Ptr health = Poco::makeShared<Poco::JSON::Object>();
        health->set("collections", collections);
        context_->setHealth(health);
    }

private:
    std::int64_t value_ = 7;
    std::int64_t intervalSeconds_ = 10;
    std::string label_ = "example";
    agent::Context* context_ = nullptr; // owned by the core, outlives start()..stop()
    std::atomic<Poco::UInt64> collections_ = 0;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SourceExample, "source-example")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
