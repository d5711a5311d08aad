/* without-syscall NAME ERRNO COMMAND [ARGS...]: runs COMMAND with the system call NAME
 * (pidfd_open, openat2 or clone3) failing with ERRNO (a number), as on a kernel without it
 * (ENOSYS) or under a seccomp filter written before it (EPERM). The tests use it to see
 * rdtmon's fallbacks: the hook's CreateGroup without pidfd_open, rdtmond's openat on a
 * system that refuses openat2. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#endif

static long syscallNumber(const char* name) {
    if (strcmp(name, "pidfd_open") == 0) {
        return __NR_pidfd_open;
    }
    if (strcmp(name, "openat2") == 0) {
        return __NR_openat2;
    }
    if (strcmp(name, "clone3") == 0) {
        return __NR_clone3;
    }
    return -1;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: without-syscall NAME ERRNO COMMAND [ARGS...]\n");
        return 2;
    }
    const long nr = syscallNumber(argv[1]);
    if (nr < 0) {
        fprintf(stderr, "without-syscall: unknown system call %s\n", argv[1]);
        return 2;
    }
    const unsigned err = (unsigned)atoi(argv[2]);
    struct sock_filter filter[] = {
#ifdef THIS_ARCH
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof filter / sizeof filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        fprintf(stderr, "without-syscall: seccomp: %s\n", strerror(errno));
        return 1;
    }
    execvp(argv[3], argv + 3);
    fprintf(stderr, "without-syscall: %s: %s\n", argv[3], strerror(errno));
    return 127;
}
