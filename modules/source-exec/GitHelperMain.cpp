// source-exec-git: the git helper process. GitRepository starts it for every clone and fetch
// and kills its process group at the deadline (see GitTransfer.h for why a process).
//
//   source-exec-git clone  URL BRANCH DESTINATION TIMEOUT_MS
//   source-exec-git update URL BRANCH CURRENT DESTINATION TIMEOUT_MS
//
// It answers with exactly one line on stdout (GitTransferProcess parses it):
//   ok changed COMMIT | ok unchanged COMMIT | error branch|timeout|failed MESSAGE
// and writes "stage: ..." lines on stderr as it goes. Exit status 0 for ok, 1 for an error,
// 2 for a bad command line. It touches only DESTINATION (created) and reads CURRENT.
#include "GitTransfer.h"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace {

using agent::exec::GitTransfer;
using agent::exec::TransferResult;

int usage() {
    std::fputs("usage: source-exec-git clone URL BRANCH DESTINATION TIMEOUT_MS\n"
               "       source-exec-git update URL BRANCH CURRENT DESTINATION TIMEOUT_MS\n",
               stderr);
    return 2;
}

// One line, whatever the message holds.
std::string oneLine(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r') c = ' ';
    return text;
}

int answer(const TransferResult& result) {
    std::string line;
    switch (result.outcome) {
    case TransferResult::Outcome::Changed:
        line = "ok changed " + result.commit;
        break;
    case TransferResult::Outcome::Unchanged:
        line = "ok unchanged " + result.commit;
        break;
    case TransferResult::Outcome::BranchNotFound:
        line = "error branch " + oneLine(result.error);
        break;
    case TransferResult::Outcome::TimedOut:
        line = "error timeout " + oneLine(result.error);
        break;
    case TransferResult::Outcome::Failed:
        line = "error failed " + oneLine(result.error);
        break;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    return line.starts_with("ok ") ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    // A server that closes the connection must be an error, not a silent death by SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    if (argc < 2) return usage();
    const std::string_view command = argv[1];
    const int expected = command == "clone" ? 6 : command == "update" ? 7 : -1;
    if (argc != expected) return usage();
    const std::string_view timeoutText = argv[argc - 1];
    long long timeoutMs = 0;
    const auto [end, error] = std::from_chars(timeoutText.data(), timeoutText.data() + timeoutText.size(), timeoutMs);
    if (error != std::errc() || end != timeoutText.data() + timeoutText.size() || timeoutMs <= 0) return usage();

    try {
        GitTransfer transfer(GitTransfer::Clock::now() + std::chrono::milliseconds(timeoutMs),
                             [](const std::string& stage) {
                                 std::fprintf(stderr, "stage: %s\n", oneLine(stage).c_str());
                                 std::fflush(stderr);
                             });
        if (command == "clone") return answer(transfer.clone(argv[2], argv[3], argv[4]));
        return answer(transfer.update(argv[2], argv[3], argv[4], argv[5]));
    } catch (const std::exception& e) {
        TransferResult result;
        result.error = e.what();
        return answer(result);
    }
}
