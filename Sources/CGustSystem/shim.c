#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CGustSystem.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int gust_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int gust_eventfd_cloexec(void) { return eventfd(0, EFD_CLOEXEC); }

int gust_memfd_cloexec(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int gust_unshare_fs(void) { return unshare(CLONE_FS) == 0 ? 0 : errno; }

int gust_o_path(void) { return O_PATH; }

int gust_set_fs_identity(unsigned uid, unsigned gid) {
    // Both calls answer the previous value whether or not they took: asking again with an
    // impossible one (-1, which changes nothing) tells which.
    setfsgid(gid);
    setfsuid(uid);
    return (unsigned)setfsuid((uid_t)-1) == uid && (unsigned)setfsgid((gid_t)-1) == gid ? 0 : -1;
}

int gust_is_socket(int fd) {
    struct stat info;
    if (fstat(fd, &info) != 0) return -1;
    return S_ISSOCK(info.st_mode) ? 1 : 0;
}

int gust_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int gust_cloexec_from(int from) {
    if (close_range((unsigned int)from, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
    // Kernels before 5.11: walk the open descriptors instead.
    DIR *directory = opendir("/proc/self/fd");
    if (directory == NULL) return -1;
    int own = dirfd(directory);
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || end == entry->d_name || fd < from || fd == own) continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0) fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(directory);
    return 0;
}

// MARK: gust_spawn

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef CLOSE_RANGE_CLOEXEC_FLAG
#define CLOSE_RANGE_CLOEXEC_FLAG (1U << 2)
#endif

/// In entry.c: a prepared sandbox's steps, in the child.
int gust_enter_sandbox(const struct gust_sandbox_entry *entry, const char *directory, int death_signal, int report, int *step);

/// In the child, between fork and exec: only async-signal-safe calls. On any
/// failure the errno goes to the parent through `report` and the child exits.
static void gust_spawn_child(const struct gust_spawn_request *request, const struct gust_sandbox_entry *entry, pid_t parent, int report)
    __attribute__((noreturn));
static void gust_spawn_child(const struct gust_spawn_request *request, const struct gust_sandbox_entry *entry, pid_t parent, int report) {
    int failure[3] = {0, GUST_SPAWN_STEP_SETUP, 0};
    // Tied to the spawning thread's life; a parent that died before this line is caught by getppid.
    if (request->parent_death_signal > 0) {
        if (prctl(PR_SET_PDEATHSIG, request->parent_death_signal) != 0) { failure[0] = errno; goto fail; }
        if (getppid() != parent) _exit(127);
    }
    // Default handlers, then the signals the parent blocked around fork unblocked.
    struct sigaction standard;
    memset(&standard, 0, sizeof standard);
    standard.sa_handler = SIG_DFL;
    for (int number = 1; number < NSIG; number++) sigaction(number, &standard, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    // Into every cgroup first, before anything of the program runs ("0" is the writer itself).
    for (const char *const *path = request->cgroup_procs; path && *path; path++) {
        int fd = open(*path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) { failure[0] = errno; failure[1] = GUST_SPAWN_STEP_CGROUP; goto fail; }
        close(fd);
    }
    if (request->address_space_limit > 0) {
        struct rlimit limit = {(rlim_t)request->address_space_limit, (rlim_t)request->address_space_limit};
        if (setrlimit(RLIMIT_AS, &limit) != 0) { failure[0] = errno; failure[1] = GUST_SPAWN_STEP_RLIMIT; goto fail; }
    }
    if (request->process_limit > 0) {
        struct rlimit limit = {(rlim_t)request->process_limit, (rlim_t)request->process_limit};
        if (setrlimit(RLIMIT_NPROC, &limit) != 0) { failure[0] = errno; failure[1] = GUST_SPAWN_STEP_RLIMIT; goto fail; }
    }
    if (request->file_mode_mask >= 0) umask((mode_t)request->file_mode_mask);
    if (setsid() < 0) { failure[0] = errno; goto fail; }
    int input = request->stdin_fd;
    if (input < 0) input = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (input < 0) { failure[0] = errno; goto fail; }
    if (dup2(input, 0) < 0 || dup2(request->stdout_fd, 1) < 0 || dup2(request->stderr_fd, 2) < 0) { failure[0] = errno; goto fail; }
    // Descriptors passed on become 3, 4, …: each first copied above that range, so that no
    // dup2 overwrites one still to be placed (nor `report`).
    int passed = request->passing_count;
    if (passed < 0 || passed > GUST_SPAWN_MAX_PASSING) { failure[0] = EINVAL; goto fail; }
    int moved = fcntl(report, F_DUPFD_CLOEXEC, 3 + passed);
    if (moved < 0) { failure[0] = errno; goto fail; }
    report = moved;
    int high[GUST_SPAWN_MAX_PASSING];
    for (int index = 0; index < passed; index++) {
        high[index] = fcntl(request->passing[index], F_DUPFD_CLOEXEC, 3 + passed);
        if (high[index] < 0) { failure[0] = errno; goto fail; }
    }
    for (int index = 0; index < passed; index++) {
        if (dup2(high[index], 3 + index) < 0) { failure[0] = errno; goto fail; }  // dup2 leaves the copy open across exec
    }
    // In a prepared sandbox the directory is one inside, changed to once there.
    if (!entry && request->directory && chdir(request->directory) != 0) { failure[0] = errno; goto fail; }
    if (request->listen_pid_entry) {
        // Its own pid, in decimal, after "LISTEN_PID=" (async-signal-safe: no printf).
        char digits[24];
        int count = 0;
        for (long value = (long)getpid(); value > 0 && count < 20; value /= 10) digits[count++] = (char)('0' + value % 10);
        char *out = request->listen_pid_entry + strlen("LISTEN_PID=");
        while (count > 0) *out++ = digits[--count];
        *out = 0;
    }
    // Every descriptor from 3 up closes at exec, whether or not its opener asked; `report` among them.
    if (syscall(SYS_close_range, 3U + (unsigned)passed, ~0U, CLOSE_RANGE_CLOEXEC_FLAG) != 0) {
        for (int fd = 3 + passed; fd < 65536; fd++) {
            int flags = fcntl(fd, F_GETFD);
            if (flags >= 0 && fd != report) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
    if (entry) {
        int error = gust_enter_sandbox(entry, request->directory, request->parent_death_signal, report, &failure[1]);
        if (error != 0) { failure[0] = error; goto fail; }
        failure[1] = GUST_SPAWN_STEP_SETUP;
    }
    execve(request->path, request->argv, request->envp);
    failure[0] = errno;
    failure[1] = GUST_SPAWN_STEP_EXEC;
fail:
    while (write(report, failure, sizeof failure) < 0 && errno == EINTR) {}
    _exit(127);
}

static int gust_spawn_common(const struct gust_spawn_request *request, const struct gust_sandbox_entry *entry, pid_t *pid, int *step);

/// The stack a child spawned without a sandbox entry runs on until its execve: gust_spawn_child needs
/// well under a page of it; libc's own posix_spawn gives 32 KiB or more.
#define GUST_SPAWN_CHILD_STACK (64 * 1024)

struct gust_spawn_child_arguments {
    const struct gust_spawn_request *request;
    pid_t parent;
    int report_read;
    int report_write;
};

static int gust_spawn_child_start(void *raw) {
    const struct gust_spawn_child_arguments *arguments = raw;
    close(arguments->report_read);
    gust_spawn_child(arguments->request, NULL, arguments->parent, arguments->report_write);
}

int gust_spawn(const struct gust_spawn_request *request, pid_t *pid, int *step) { return gust_spawn_common(request, NULL, pid, step); }

int gust_spawn_entering(const struct gust_spawn_request *request, const struct gust_sandbox_entry *entry, pid_t *pid, int *step) {
    return gust_spawn_common(request, entry, pid, step);
}

static int gust_spawn_common(const struct gust_spawn_request *request, const struct gust_sandbox_entry *entry, pid_t *pid, int *step) {
    *step = GUST_SPAWN_STEP_SETUP;
    // The pid written there would be the first fork's, not the program's.
    if (entry && request->listen_pid_entry) return EINVAL;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    // No handler of gustd's may run in the child before it resets them.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t parent = getpid();
    pid_t child;
    int forkError = 0;
    if (entry) {
        // Entering a sandbox unshares a user namespace, which a process sharing gustd's memory may
        // not: a real fork. _Fork: no atfork handlers, safe in a multithreaded process whose child only execs.
        child = _Fork();
        if (child == 0) {
            close(report[0]);
            gust_spawn_child(request, entry, parent, report[1]);
        }
        forkError = errno;
    } else {
        // As posix_spawn does: the child borrows gustd's memory on a stack of its own until its execve
        // (CLONE_VM | CLONE_VFORK; this thread waits meanwhile), instead of a copy of gustd's page
        // tables: a fork of gustd took about 1 ms (docs/benchmarks.md, "Where a cold start goes").
        // gust_spawn_child makes only system calls, on its own stack; signals stay blocked until it
        // has reset every handler, and its descriptors, directory and rlimits are its own.
        struct gust_spawn_child_arguments arguments = {request, parent, report[0], report[1]};
        void *stack = mmap(NULL, GUST_SPAWN_CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) {
            forkError = errno;
            child = -1;
        } else {
            child = clone(gust_spawn_child_start, (char *)stack + GUST_SPAWN_CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &arguments);
            forkError = errno;
            munmap(stack, GUST_SPAWN_CHILD_STACK);
        }
    }
    *step = GUST_SPAWN_STEP_SETUP;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    close(report[1]);
    if (child < 0) {
        close(report[0]);
        return forkError;
    }
    int failure[3] = {0, 0, 0};
    ssize_t got;
    while ((got = read(report[0], failure, sizeof failure)) < 0 && errno == EINTR) {}
    int status;
    if (entry) {
        // The first fork reports the program's pid (gustd's child too, CLONE_PARENT) and exits; then the
        // program reports a failure, or nothing before its execve closes the pipe.
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        if (got != (ssize_t)sizeof failure || failure[1] != GUST_SPAWN_STEP_STARTED) {
            close(report[0]);
            *step = got > 0 ? failure[1] : GUST_SPAWN_STEP_SANDBOX;
            return got > 0 && failure[0] ? failure[0] : EIO;
        }
        child = (pid_t)failure[2];
        memset(failure, 0, sizeof failure);
        while ((got = read(report[0], failure, sizeof failure)) < 0 && errno == EINTR) {}
    }
    close(report[0]);
    if (got > 0) {
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        *step = failure[1];
        return failure[0] ? failure[0] : EIO;
    }
    *pid = child;
    return 0;
}

int gust_seqpacket_pair(int fds[2]) { return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds); }

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int gust_pidfd_send_signal(int pidfd, int signal) {
    return syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0) == 0 ? 0 : errno;
}

ssize_t gust_send_with_fds(int socket, const void *bytes, size_t count, const int *fds, int fd_count) {
    struct iovec vector = {.iov_base = (void *)bytes, .iov_len = count};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1};
    char control[CMSG_SPACE(sizeof(int) * 8)];
    if (fd_count > 8) return -1;
    if (fd_count > 0) {
        memset(control, 0, sizeof(control));
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * fd_count);
    }
    ssize_t sent;
    do { sent = sendmsg(socket, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent;
}

ssize_t gust_receive_with_fds(int socket, void *bytes, size_t capacity, int *fds, int max_fds, int *fd_count) {
    struct iovec vector = {.iov_base = bytes, .iov_len = capacity};
    char control[CMSG_SPACE(sizeof(int) * 8)];
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
    *fd_count = 0;
    ssize_t received;
    do { received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return received;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *received_fds = (int *)CMSG_DATA(header);
        for (int i = 0; i < count; i++) {
            if (*fd_count < max_fds) fds[(*fd_count)++] = received_fds[i];
            else close(received_fds[i]);
        }
    }
    return received;
}

// MARK: gust_open_as_app

#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct gust_open_as_app_job {
    int namespace_fd;
    uid_t uid;
    const char *const *paths;
    int count;
    int *fds;
    int error;
    int step;
};

/// The child of `gust_open_as_app`: it shares gustd's memory (CLONE_VM, gustd waits: CLONE_VFORK) and
/// descriptor table (CLONE_FILES), so the files it opens are gustd's. Syscalls only.
static int gust_open_as_app_child(void *raw) {
    struct gust_open_as_app_job *job = raw;
    job->step = 1;
    if (setns(job->namespace_fd, CLONE_NEWUSER) != 0) { job->error = errno; return 1; }
    // The app's uid as the effective one (the credentials the files are opened with, which the
    // cgroup v1 write checks), keeping the namespace's capabilities permitted; then the one
    // capability that opens gustd's files: CAP_DAC_OVERRIDE, over files of uids mapped here.
    // A raw system call, as in gust_enter_sandbox (entry.c): glibc's setresuid broadcasts the change
    // to every thread it believes the process has (the setxid handshake), and this clone of
    // multithreaded gustd, which glibc never saw, would signal gustd's threads and wait for them.
    job->step = 2;
    if (syscall(SYS_setresuid, (uid_t)-1, job->uid, (uid_t)-1) != 0) { job->error = errno; return 1; }
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    job->step = 3;
    if (syscall(SYS_capget, &header, data) != 0) { job->error = errno; return 1; }
    data[0].effective |= 1u << CAP_DAC_OVERRIDE;
    if (syscall(SYS_capset, &header, data) != 0) { job->error = errno; return 1; }
    job->step = 4;
    for (int index = 0; index < job->count; index++) {
        job->fds[index] = open(job->paths[index], O_WRONLY | O_CLOEXEC);
        if (job->fds[index] < 0) { job->error = errno; return 1; }
    }
    job->step = 0;
    return 0;
}

int gust_open_as_app(int namespace_fd, unsigned uid, const char *const *paths, int count, int *fds, int *step) {
    for (int index = 0; index < count; index++) fds[index] = -1;
    struct gust_open_as_app_job job = {namespace_fd, (uid_t)uid, paths, count, fds, 0, 0};
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    if (stack == NULL) return ENOMEM;
    // No signal handler of gustd's may run in the child, which shares its memory (as posix_spawn
    // does): every signal is blocked around the clone, and the child never unblocks them.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t child = clone(gust_open_as_app_child, stack + size, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &job);
    int error = child < 0 ? errno : 0;
    if (child > 0) {
        int status = 0;
        while (waitpid(child, &status, __WALL) < 0 && errno == EINTR) {}
        if (job.error == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) job.error = ECHILD;
        error = job.error;
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    free(stack);
    *step = job.step;
    if (error != 0) {
        for (int index = 0; index < count; index++) {
            if (fds[index] >= 0) close(fds[index]);
            fds[index] = -1;
        }
    }
    return error;
}
