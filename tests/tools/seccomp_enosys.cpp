// seccomp_enosys SYSCALL[,SYSCALL...] -- COMMAND [ARGS...]
//
// Runs COMMAND as if the kernel lacked the listed system calls: a seccomp filter answers them with
// ENOSYS, as a kernel that predates them would, and allows everything else. The filter holds for
// COMMAND and everything it starts. The tests use it to run the plugin runner's fallbacks for
// kernels before 5.3 (pidfd_open) and 5.9/5.11 (close_range) on a newer kernel.
#include <seccomp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sys/prctl.h>
#include <unistd.h>

namespace {

int usage() {
    std::fprintf(stderr, "usage: seccomp_enosys SYSCALL[,SYSCALL...] -- COMMAND [ARGS...]\n");
    return 2;
}

std::vector<std::string> splitOnCommas(const std::string& list) {
    std::vector<std::string> names;
    std::string::size_type begin = 0;
    for (;;) {
        const std::string::size_type end = list.find(',', begin);
        names.push_back(list.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
        if (end == std::string::npos) return names;
        begin = end + 1;
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4 || std::strcmp(argv[2], "--") != 0) return usage();

    // Default: allow. Only the native architecture is in the filter; a binary of another one
    // (i386 on x86_64) would be killed, which the tests never run.
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
    if (filter == nullptr) {
        std::fprintf(stderr, "seccomp_enosys: seccomp_init failed\n");
        return 1;
    }
    for (const std::string& name : splitOnCommas(argv[1])) {
        const int number = seccomp_syscall_resolve_name(name.c_str());
        if (number == __NR_SCMP_ERROR) {
            std::fprintf(stderr, "seccomp_enosys: unknown system call '%s'\n", name.c_str());
            return 2;
        }
        // libseccomp returns -errno.
        if (const int rc = seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), number, 0); rc != 0) {
            std::fprintf(stderr, "seccomp_enosys: rule for %s: %s\n", name.c_str(), std::strerror(-rc));
            return 1;
        }
    }
    // Needed to load a filter without CAP_SYS_ADMIN; as root it also keeps setuid binaries from
    // gaining privileges, which the tests do not rely on.
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        std::fprintf(stderr, "seccomp_enosys: PR_SET_NO_NEW_PRIVS: %s\n", std::strerror(errno));
        return 1;
    }
    if (const int rc = seccomp_load(filter); rc != 0) {
        std::fprintf(stderr, "seccomp_enosys: seccomp_load: %s\n", std::strerror(-rc));
        return 1;
    }
    seccomp_release(filter);

    execvp(argv[3], argv + 3);
    std::fprintf(stderr, "seccomp_enosys: cannot execute %s: %s\n", argv[3], std::strerror(errno));
    return 127;
}
