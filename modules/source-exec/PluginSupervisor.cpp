// The supervisor's one thread (see PluginSupervisor.h): epoll over the descriptors of every
// running plugin, each registered with a pointer to its Watch; runs are finished and reported
// only after a whole batch of events was handled, so no event of a batch names a freed run.
#include "PluginSupervisor.h"
#include "PluginProcess.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <system_error>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace agent::exec {

namespace {
using Clock = std::chrono::steady_clock;
constexpr int kMaxEvents = 256;
} // namespace

struct PluginSupervisor::Entry {
    // What an epoll event names: a run and which of its descriptors.
    struct Watch {
        Entry* entry;
        int which; // 0 stdout, 1 stderr, 2 pidfd
    };
    std::unique_ptr<PluginProcess> process;
    Callback done;
    Watch watches[3];
};

PluginSupervisor::PluginSupervisor(const KernelSupport& allowed) : support_(PluginRunner::kernelSupport()) {
    support_.closeRangeCloexec = support_.closeRangeCloexec && allowed.closeRangeCloexec;
    support_.closeRange = support_.closeRange && allowed.closeRange;
    support_.procSelfFd = support_.procSelfFd && allowed.procSelfFd;
    support_.pidfd = support_.pidfd && allowed.pidfd;
    epollFd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epollFd_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
    eventFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eventFd_ < 0) {
        const int error = errno;
        ::close(epollFd_);
        throw std::system_error(error, std::system_category(), "eventfd");
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = nullptr; // the wake-up
    if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, eventFd_, &event) != 0) {
        const int error = errno;
        ::close(eventFd_);
        ::close(epollFd_);
        throw std::system_error(error, std::system_category(), "epoll_ctl");
    }
    thread_ = std::thread([this] { loop(); });
}

PluginSupervisor::~PluginSupervisor() {
    stop(std::chrono::milliseconds(0));
    ::close(eventFd_);
    ::close(epollFd_);
}

void PluginSupervisor::wake() {
    const std::uint64_t one = 1;
    // EAGAIN: the counter is full, so the thread wakes anyway.
    [[maybe_unused]] const ssize_t written = ::write(eventFd_, &one, sizeof one);
}

void PluginSupervisor::start(const RunRequest& request, Callback done) {
    RunResult failed;
    std::unique_ptr<PluginProcess> process = PluginProcess::start(request, support_, failed);
    if (!process) {
        try {
            done(std::move(failed));
        } catch (...) {
        }
        return;
    }
    auto entry = std::make_unique<Entry>();
    entry->process = std::move(process);
    entry->done = std::move(done);
    {
        std::lock_guard lock(mutex_);
        if (accepting_) {
            ++running_;
            pending_.push_back(std::move(entry));
            wake();
            return;
        }
    }
    // The thread is gone: end this one here, as stop() would have.
    entry->process->stopNow(std::chrono::milliseconds(0), Clock::now());
    RunResult result = driveToEnd(*entry->process);
    try {
        entry->done(std::move(result));
    } catch (...) {
    }
}

void PluginSupervisor::stop(std::chrono::milliseconds grace) {
    std::lock_guard serial(stopMutex_);
    {
        std::lock_guard lock(mutex_);
        if (!stopping_) {
            stopping_ = true;
            stopGrace_ = grace;
        }
    }
    wake();
    if (thread_.joinable()) thread_.join();
}

void PluginSupervisor::report(Entry& entry, RunResult result) {
    entry.process.reset(); // reaped already; closes nothing registered
    --running_;
    try {
        entry.done(std::move(result));
    } catch (...) {
    }
}

void PluginSupervisor::loop() {
    std::vector<std::unique_ptr<Entry>> runs;
    bool stopApplied = false;
    std::chrono::milliseconds grace{0};
    Clock::time_point lastExitCheck = Clock::now();
    epoll_event events[kMaxEvents];

    auto watch = [this](Entry& entry, int which, int fd) {
        if (fd < 0) return;
        entry.watches[which] = {&entry, which};
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.ptr = &entry.watches[which];
        // ENOMEM or ENOSPC (max_user_watches): this run cannot be watched, so it ends now as an error.
        if (epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &event) != 0)
            entry.process->fail("cannot watch the plugin (epoll_ctl): " + std::system_category().message(errno));
    };

    for (;;) {
        // New runs, and the stop request.
        std::vector<std::unique_ptr<Entry>> taken;
        bool stopRequested = false;
        {
            std::lock_guard lock(mutex_);
            taken.swap(pending_);
            stopRequested = stopping_;
            grace = stopGrace_;
        }
        for (std::unique_ptr<Entry>& entry : taken) {
            PluginProcess& process = *entry->process;
            process.watchedBy(epollFd_);
            watch(*entry, 0, process.stdoutFd());
            watch(*entry, 1, process.stderrFd());
            watch(*entry, 2, process.pidFd());
            runs.push_back(std::move(entry));
        }
        Clock::time_point now = Clock::now();
        if (stopRequested && (!stopApplied || !taken.empty())) {
            for (std::unique_ptr<Entry>& entry : runs)
                entry->process->stopNow(grace, now);
            stopApplied = true;
        }

        // Time-driven steps, and the runs that are over.
        std::optional<Clock::time_point> wakeAt;
        bool anyPolled = false;
        for (auto it = runs.begin(); it != runs.end();) {
            PluginProcess& process = *(*it)->process;
            process.advance(now);
            if (process.done(now)) {
                std::unique_ptr<Entry> entry = std::move(*it);
                it = runs.erase(it);
                RunResult result = entry->process->finish();
                report(*entry, std::move(result));
                continue;
            }
            if (const auto next = process.nextWake(now)) wakeAt = wakeAt ? std::min(*wakeAt, *next) : *next;
            anyPolled = anyPolled || (!process.exited() && process.pidFd() < 0);
            ++it;
        }
        if (stopApplied && runs.empty()) {
            std::lock_guard lock(mutex_);
            if (pending_.empty()) {
                accepting_ = false;
                return;
            }
            continue;
        }

        int waitMs = -1;
        now = Clock::now();
        if (wakeAt) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*wakeAt - now).count();
            waitMs = static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
        }
        if (anyPolled) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(
                                  lastExitCheck + PluginProcess::kExitCheckInterval - now)
                                  .count();
            const int checkMs = static_cast<int>(std::max<long long>(0, left));
            waitMs = waitMs < 0 ? checkMs : std::min(waitMs, checkMs);
        }
        const int ready = epoll_wait(epollFd_, events, kMaxEvents, waitMs);
        if (ready < 0 && errno != EINTR) std::abort(); // EBADF/EFAULT/EINVAL: a bug
        for (int i = 0; i < ready; ++i) {
            auto* watched = static_cast<Entry::Watch*>(events[i].data.ptr);
            if (watched == nullptr) {
                std::uint64_t count = 0;
                [[maybe_unused]] const ssize_t n = ::read(eventFd_, &count, sizeof count);
                continue;
            }
            PluginProcess& process = *watched->entry->process;
            if (watched->which == 0)
                process.readStdout();
            else if (watched->which == 1)
                process.readStderr();
            else
                process.checkExit();
        }
        // Without a pidfd: has any of our plugins exited? (waitid on each one's own pid)
        if (anyPolled && Clock::now() >= lastExitCheck + PluginProcess::kExitCheckInterval) {
            lastExitCheck = Clock::now();
            for (std::unique_ptr<Entry>& entry : runs)
                if (entry->process->pidFd() < 0) entry->process->checkExit();
        }
    }
}

} // namespace agent::exec
