#include "Logging.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/File.h>
#include <Poco/FileChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>
#include <Poco/SplitterChannel.h>

#include <mutex>

namespace agent {
namespace {

std::mutex fileChannelMutex;                 // guards fileChannel
Poco::AutoPtr<Poco::FileChannel> fileChannel; // the current log file, for reopenLog()

Poco::AutoPtr<LogRing> recentProblems(new LogRing(100)); // logRing(); lives as long as the process

Poco::AutoPtr<Poco::PatternFormatter> formatter() {
    Poco::AutoPtr<Poco::PatternFormatter> pattern(new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%iZ %p %s: %t"));
    pattern->setProperty("times", "UTC");
    return pattern;
}

} // namespace

std::string setUpLogging(const LogSettings& settings) {
    Poco::File(settings.directory).createDirectories();
    const std::string path = settings.directory + "/agent.log";

    Poco::AutoPtr<Poco::FileChannel> file(new Poco::FileChannel(path));
    file->setProperty("rotation", std::to_string(settings.rotateBytes));
    file->setProperty("archive", "number");
    file->setProperty("purgeCount", std::to_string(std::max(1, settings.keepFiles)));
    file->setProperty("flush", "true");
    file->open(); // fail now, with the reason, if the file cannot be written

    Poco::AutoPtr<Poco::SplitterChannel> splitter(new Poco::SplitterChannel);
    splitter->addChannel(file);
    if (settings.alsoStderr) splitter->addChannel(new Poco::ConsoleChannel);
    Poco::AutoPtr<Poco::FormattingChannel> formatting(new Poco::FormattingChannel(formatter(), splitter));
    // The ring gets the messages before formatting: it keeps time, level and source apart.
    Poco::AutoPtr<Poco::SplitterChannel> root(new Poco::SplitterChannel);
    root->addChannel(formatting);
    root->addChannel(recentProblems);

    Poco::Logger::root().setChannel(root);
    Poco::Logger::setLevel("", Poco::Logger::parseLevel(settings.level));
    std::lock_guard<std::mutex> lock(fileChannelMutex);
    fileChannel = file;
    return path;
}

LogRing& logRing() { return *recentProblems; }

void reopenLog() {
    std::lock_guard<std::mutex> lock(fileChannelMutex);
    if (fileChannel) fileChannel->close();
}

void setUpConsoleLogging(const std::string& level) {
    Poco::AutoPtr<Poco::FormattingChannel> formatting(new Poco::FormattingChannel(formatter(), new Poco::ConsoleChannel));
    Poco::Logger::root().setChannel(formatting);
    Poco::Logger::setLevel("", Poco::Logger::parseLevel(level));
}

} // namespace agent
