// sink-file: appends metrics as InfluxDB line protocol to a file that rotates by size.
// The embedded default for a machine with no queue or database. Rotation and purging are Poco's
// FileChannel (a file writer with size rotation and numbered archives), written one batch per
// message, flushed to the kernel after each batch.
#include <agent/Abi.h>
#include <agent/Context.h>
#include <agent/LineProtocol.h>
#include <agent/Module.h>

#include <Poco/AutoPtr.h>
#include <Poco/ClassLibrary.h>
#include <Poco/Exception.h>
#include <Poco/File.h>
#include <Poco/FileChannel.h>
#include <Poco/Message.h>
#include <Poco/Path.h>

namespace {

const agent::ConfigSchema kSchema = {
    {"path", agent::ConfigType::String, "", "file to append to; \"\" = <statedir>/modules/sink-file/metrics.lp"},
    {"rotate_size", agent::ConfigType::Integer, "104857600", "bytes at which the file rotates (path.0, path.1, ...)"},
    {"rotate_keep", agent::ConfigType::Integer, "5", "rotated files kept"},
    {"namespace_tag", agent::ConfigType::String, "ns", "tag that carries the metric's namespace; \"\" = none"},
};

class SinkFile : public agent::Sink {
public:
    const agent::ConfigSchema& configSchema() const override { return kSchema; }

    void configure(const agent::ModuleConfig& config) override {
        agent::ConfigErrors errors;
        path_ = config.getPath("path");
        rotateSize_ = config.getInt("rotate_size");
        rotateKeep_ = config.getInt("rotate_keep");
        encoder_ = agent::LineProtocolEncoder({config.getString("namespace_tag")});
        if (rotateSize_ < 4096) errors.add(config, "rotate_size", "must be at least 4096 bytes");
        if (rotateKeep_ < 1 || rotateKeep_ > 1000) errors.add(config, "rotate_keep", "must be between 1 and 1000");
        if (!path_.empty() && Poco::Path(path_).getFileName().empty())
            errors.add(config, "path", "\"" + path_ + "\" names a directory, not a file");
        errors.throwIfAny();
    }

    void start(agent::Context& context) override {
        logger_ = &context.logger();
        if (path_.empty()) path_ = context.stateDir() + "/metrics.lp";
        Poco::File(Poco::Path(path_).parent()).createDirectories();
        file_ = new Poco::FileChannel(path_);
        file_->setProperty("rotation", std::to_string(rotateSize_));
        file_->setProperty("archive", "number");
        file_->setProperty("purgeCount", std::to_string(rotateKeep_));
        file_->setProperty("flush", "true");
        file_->open(); // fails here, with the reason, when the file cannot be written
        logger_->information("writing line protocol to %s", path_);
    }

    // One writer thread (batching() keeps the default concurrency of 1). Done counts the whole
    // batch delivered: the file refuses nothing (a point with no encodable field is left out).
    agent::WriteResult write(const agent::Batch& batch) override {
        const agent::WriteResult done(agent::WriteOutcome::Done, batch.size(), 0);
        std::string text;
        encoder_.append(text, batch);
        if (text.empty()) return done; // nothing encodable (NaN only)
        text.pop_back(); // FileChannel ends every message with a newline of its own
        try {
            file_->log(Poco::Message("sink-file", text, Poco::Message::PRIO_INFORMATION));
        } catch (const Poco::Exception& error) {
            logger_->error("cannot write %s: %s", path_, error.displayText());
            return agent::WriteOutcome::Retry;
        }
        return done;
    }

    void stop() override {
        if (file_) file_->close();
    }

private:
    std::string path_;
    std::int64_t rotateSize_ = 0;
    std::int64_t rotateKeep_ = 0;
    agent::LineProtocolEncoder encoder_;
    Poco::AutoPtr<Poco::FileChannel> file_;
    Poco::Logger* logger_ = nullptr;
};

} // namespace

POCO_BEGIN_MANIFEST(agent::Module)
    POCO_EXPORT_INTERFACE(SinkFile, "sink-file")
POCO_END_MANIFEST

AGENT_MODULE_ABI()
