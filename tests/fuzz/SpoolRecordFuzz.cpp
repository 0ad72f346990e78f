// libFuzzer target: what the spool reads back from disk. The input is used both as a record
// payload (decodeBatch must refuse or accept it, never read past it) and as the content of a
// segment file left by a crashed run (recovery must cut what is not a whole valid record).
#include "BatchCodec.h"
#include "Spool.h"

#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/TemporaryFile.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    agent::Batch batch;
    if (agent::decodeBatch(bytes, batch)) {
        std::string again;
        agent::encodeBatch(batch, again); // a decoded batch must encode (and decode) again
        agent::Batch twice;
        if (!agent::decodeBatch(again, twice) || twice.size() != batch.size()) std::abort();
    }

    static const std::string dir = Poco::TemporaryFile::tempName();
    Poco::File(dir).createDirectories();
    std::ofstream(dir + "/00000000000000000001.seg", std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(size));
    unlink((dir + "/cursor").c_str()); // absent on the first run
    {
        agent::Spool::Options options;
        options.directory = dir;
        options.fsync = agent::Spool::Fsync::Never;
        agent::Spool spool(options, Poco::Logger::get("fuzz"));
        agent::Spool::Position pos = spool.committed();
        agent::Spool::Record record;
        while (spool.read(pos, record)) pos = record.next;
        if (spool.stats().bytes > size) std::abort(); // recovery only ever cuts
    }
    return 0;
}
