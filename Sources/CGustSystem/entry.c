#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CGustSystem.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/// Used by `gust_spawn_child` (shim.c): the steps of docs/benchmarks.md, "Entering a prepared sandbox".
/// Async-signal-safe calls only (it runs in a fork of gustd). Returns in the program's process, which is
/// gustd's own child (CLONE_PARENT), with 0, ready for execve; the first fork reports the program's pid
/// through `report` and exits. On failure returns the errno, `*step` set.
int gust_enter_sandbox(const struct gust_sandbox_entry *entry, const char *directory, int death_signal, int report, int *step);

/// "size=N,mode=1777" into `out` without printf.
static void gust_tmpfs_options(long long bytes, char *out) {
    const char *prefix = "size=";
    while (*prefix) *out++ = *prefix++;
    char digits[24];
    int count = 0;
    unsigned long long value = bytes > 0 ? (unsigned long long)bytes : 0;
    do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value > 0 && count < 20);
    while (count > 0) *out++ = digits[--count];
    const char *mode = ",mode=1777";
    while (*mode) *out++ = *mode++;
    *out = 0;
}

int gust_enter_sandbox(const struct gust_sandbox_entry *entry, const char *directory, int death_signal, int report, int *step) {
    *step = GUST_SPAWN_STEP_SANDBOX;
    // gustd, as a pidfd: the program checks it after PR_SET_PDEATHSIG (gustd's pid means nothing inside).
    int gustd = -1;
    if (death_signal > 0 && (gustd = (int)syscall(SYS_pidfd_open, getppid(), 0)) < 0) return errno;
    // 1. The user namespace that owns the holder's mount namespace: its capabilities there.
    if (setns(entry->owner_userns_fd, CLONE_NEWUSER) != 0) return errno;
    // 2. A private copy of the host's mount namespace, only to clone the two host paths as detached mounts.
    if (unshare(CLONE_NEWNS) != 0) return errno;
    int release = (int)syscall(SYS_open_tree, AT_FDCWD, entry->release, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (release < 0) return errno;
    int sockets = (int)syscall(SYS_open_tree, AT_FDCWD, entry->sockets, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (sockets < 0) return errno;
    struct mount_attr readOnly = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (syscall(SYS_mount_setattr, release, "", AT_EMPTY_PATH, &readOnly, sizeof readOnly) != 0) return errno;
    struct mount_attr writable = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    struct mount_attr *socketsAttributes = entry->sockets_writable ? &writable : &readOnly;
    if (syscall(SYS_mount_setattr, sockets, "", AT_EMPTY_PATH, socketsAttributes, sizeof *socketsAttributes) != 0) return errno;
    // 3. The holder's mount namespace, then one of this start's own, nothing propagating back.
    if (setns(entry->mnt_fd, CLONE_NEWNS) != 0) return errno;
    if (unshare(CLONE_NEWNS) != 0) return errno;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return errno;
    if (syscall(SYS_move_mount, release, "", AT_FDCWD, "/app", MOVE_MOUNT_F_EMPTY_PATH) != 0) return errno;
    if (syscall(SYS_move_mount, sockets, "", AT_FDCWD, "/run/gust", MOVE_MOUNT_F_EMPTY_PATH) != 0) return errno;
    close(release);
    close(sockets);
    char options[64];
    gust_tmpfs_options(entry->tmp_bytes, options);
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, options) != 0) return errno;
    if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, options) != 0) return errno;
    // 4. PID, IPC and UTS: the holder's, or fresh ones; the cgroup namespace rooted where gust_spawn joined.
    int fresh = entry->pid_fd < 0;
    if (fresh) {
        if (unshare(CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return errno;
        if (sethostname("gust", 4) != 0) return errno;
    } else {
        if (setns(entry->ipc_fd, CLONE_NEWIPC) != 0) return errno;
        if (setns(entry->uts_fd, CLONE_NEWUTS) != 0) return errno;
        if (setns(entry->pid_fd, CLONE_NEWPID) != 0) return errno;
    }
    if (unshare(CLONE_NEWCGROUP) != 0 && errno != EINVAL) return errno;
    // 5. The program's process, in the PID namespace: gustd's child, so that gustd waits for it.
    pid_t program = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (program < 0) return errno;
    if (program > 0) {
        int started[3] = {0, GUST_SPAWN_STEP_STARTED, (int)program};
        while (write(report, started, sizeof started) < 0 && errno == EINTR) {}
        _exit(0);
    }
    // 6. The program: tied to gustd's spawn thread, its own session, then the app's uid and nothing more.
    if (death_signal > 0) {
        if (prctl(PR_SET_PDEATHSIG, death_signal) != 0) return errno;
        struct pollfd gone = {.fd = gustd, .events = POLLIN};
        if (poll(&gone, 1, 0) != 0) _exit(127);
        close(gustd);
    }
    if (setsid() < 0) return errno;
    if (fresh) {
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) return errno;
        // As bwrap's --proc: what a process could write to, read-only.
        // And, as Docker, /proc/fs, /proc/scsi (a SCSI device removed by a write) and /proc/acpi.
        const char *const covered[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", "/proc/scsi", "/proc/acpi"};
        for (unsigned index = 0; index < sizeof covered / sizeof covered[0]; index++) {
            if (mount(covered[index], covered[index], NULL, MS_BIND | MS_REC, NULL) != 0) {
                if (errno == ENOENT) continue;
                return errno;
            }
            struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
            if (syscall(SYS_mount_setattr, AT_FDCWD, covered[index], AT_RECURSIVE, &attr, sizeof attr) != 0) return errno;
        }
    }
    if (entry->userns_fd >= 0 && setns(entry->userns_fd, CLONE_NEWUSER) != 0) return errno;
    if (chdir(directory ? directory : "/") != 0) return errno;
    for (int capability = 0; capability <= 63; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0) {
            if (errno == EINVAL) break;  // past the last capability this kernel knows
            return errno;
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return errno;
    // Raw system calls: glibc's wrappers of these broadcast the change to every thread it believes the
    // process has (the setxid handshake), and a fork of multithreaded gustd (a clone glibc never saw)
    // would wait forever on a futex for threads that are not there. The program is single-threaded.
    if (entry->set_groups && syscall(SYS_setgroups, 0, NULL) != 0) return errno;
    if (syscall(SYS_setresgid, entry->gid, entry->gid, entry->gid) != 0) return errno;
    if (syscall(SYS_setresuid, entry->uid, entry->uid, entry->uid) != 0) return errno;
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &header, none) != 0) return errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    if (entry->seccomp_length > 0) {
        struct sock_fprog program = {
            .len = (unsigned short)(entry->seccomp_length / sizeof(struct sock_filter)),
            .filter = (struct sock_filter *)entry->seccomp,
        };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) return errno;
    }
    return 0;
}
