// Linux process primitives that Glibc's Swift overlay does not import without
// _GNU_SOURCE: what gustd needs to spawn instances safely.
#ifndef CGUSTSYSTEM_H
#define CGUSTSYSTEM_H

#include <spawn.h>
#include <sys/types.h>

/// pipe2(fds, O_CLOEXEC): both ends close on exec, atomically, so an instance
/// started by another thread at the same moment never inherits them.
int gust_pipe_cloexec(int fds[2]);

/// eventfd(0, EFD_CLOEXEC): one descriptor that, once written to, stays readable for every thread
/// that polls it (a signal to stop, to any number of readers).
int gust_eventfd_cloexec(void);

/// memfd_create(name, MFD_CLOEXEC): a file in memory only, on no filesystem, closed on exec unless
/// a spawn places it (a holder's stderr, read only if its making fails).
int gust_memfd_cloexec(const char *name);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+): the child closes every
/// descriptor from `from` up, after the file actions before it (dup2 onto 0, 1, 2) ran.
/// Whatever gustd holds open, and whether or not it is close-on-exec, a child never gets it.
int gust_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// Marks every open descriptor from `from` up close-on-exec (close_range with
/// CLOSE_RANGE_CLOEXEC, else a walk of /proc/self/fd). For a process that is
/// about to exec (gust before git), and for gustd's own descriptors made by
/// libraries that do not ask for O_CLOEXEC (SwiftNIO's listeners and epoll).
int gust_cloexec_from(int from);

/// O_PATH (a descriptor that names a file without opening it: for walking a path one component at
/// a time with O_NOFOLLOW, and for connecting to the very socket found that way).
int gust_o_path(void);

/// Whether `fd` (an O_PATH descriptor will do) is a socket: 1, 0, or -1 with errno.
int gust_is_socket(int fd);

/// unshare(CLONE_FS) for the calling thread: its umask (and working directory and root) become its
/// own, so that what it does to them (libarchive sets the umask to 0 and back for every entry it
/// writes) is never the process's. 0, or an errno.
int gust_unshare_fs(void);

/// Sets the calling thread's file-system uid and gid (setfsuid(2) and setfsgid(2) act on one
/// thread): opens and creations it makes are then checked and owned as that user's, root's
/// capabilities over files set aside until it sets 0 back. 0, or -1 when the kernel kept the old ones.
int gust_set_fs_identity(unsigned uid, unsigned gid);

/// What `gust_spawn` starts, and how the child is confined before it runs a line of it.
struct gust_spawn_request {
    const char *path;
    char *const *argv;
    char *const *envp;
    /// The child's working directory, or NULL.
    const char *directory;
    /// Become the child's stdin (-1: /dev/null), stdout and stderr.
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    /// NULL-terminated `cgroup.procs` (or `tasks`) files the child writes itself into first; may be NULL.
    const char *const *cgroup_procs;
    /// RLIMIT_AS and RLIMIT_NPROC for the child; 0 leaves them as they are.
    long long address_space_limit;
    long long process_limit;
    /// Descriptors the child gets as 3, 4, … (a zygote's control socket); at most GUST_SPAWN_MAX_PASSING.
    const int *passing;
    int passing_count;
    /// A signal the child gets when the thread that spawned it ends (PR_SET_PDEATHSIG), 0 for none;
    /// if that thread's process is gone before the child set it, the child exits at once.
    int parent_death_signal;
    /// An entry of `envp` that starts "LISTEN_PID=" and has room for 20 digits after it, or NULL:
    /// the child writes its own pid there before execve (systemd's socket-activation
    /// convention, sd_listen_fds(3), for the listening sockets passed on as 3, 4, …).
    char *listen_pid_entry;
    /// The child's umask, or -1 to keep the parent's (a sandbox's bwrap started with no shell: 000, so
    /// that gustd, another uid, can connect to the socket the instance makes).
    int file_mode_mask;
};

#define GUST_SPAWN_MAX_PASSING 8

/// Starts a process the way gustd starts instances: fork (glibc's _Fork, no
/// atfork handlers), and in the child, with only async-signal-safe calls: join
/// each cgroup, set the rlimits, default signal handlers and an empty mask, a
/// new session, stdin from /dev/null, stdout and stderr, the directory, every
/// descriptor passed on placed at 3, 4, …, every
/// other from there up close-on-exec, execve. Returns 0 and the pid, or the
/// errno of the step that failed, that step in `step` (the child is reaped
/// then): so no process ever runs a line of its program outside its cgroups.
int gust_spawn(const struct gust_spawn_request *request, pid_t *pid, int *step);

/// Which step of `gust_spawn` failed.
enum {
    GUST_SPAWN_STEP_SETUP = 0,    // fork, session, stdio, directory
    GUST_SPAWN_STEP_CGROUP = 1,   // joining a cgroup
    GUST_SPAWN_STEP_RLIMIT = 2,   // setting an rlimit
    GUST_SPAWN_STEP_EXEC = 3,     // execve
    GUST_SPAWN_STEP_SANDBOX = 4,  // entering a prepared sandbox (`gust_spawn_entering`)
    GUST_SPAWN_STEP_STARTED = 5,  // not a failure: the first fork reporting the program's pid
};

/// A prepared sandbox (a holder's namespaces, made once by bwrap) that `gust_spawn_entering` starts a
/// program in instead of bwrap building one: docs/benchmarks.md, "Entering a prepared sandbox".
struct gust_sandbox_entry {
    /// The user namespace that owns the holder's mount namespace (NS_GET_USERNS), and the holder's own
    /// user namespace when bwrap nested one in it (-1 when they are the same).
    int owner_userns_fd;
    int userns_fd;
    /// The holder's mount namespace, whose root has `/app`, `/run/gust`, `/tmp` and `/dev/shm` to mount on.
    int mnt_fd;
    /// The holder's PID, IPC and UTS namespaces, or all -1 for fresh ones (with their own `/proc`).
    int pid_fd;
    int ipc_fd;
    int uts_fd;
    /// Host paths: bound read-only at `/app` and at `/run/gust` (writable there when `sockets_writable`: a
    /// release whose runtime binds its own socket), cloned as detached mounts, so the holder's
    /// namespace never holds them.
    const char *release;
    const char *sockets;
    int sockets_writable;
    /// The size of this start's own `/tmp` and `/dev/shm`.
    long long tmp_bytes;
    /// The uid and gid inside that the program runs as, with no capability and `no_new_privs`.
    unsigned uid;
    unsigned gid;
    /// Whether the namespace's gid map allows `setgroups` (a map written by newgidmap).
    int set_groups;
    /// A classic BPF seccomp program (`struct sock_filter` entries), loaded last; NULL for none.
    const void *seccomp;
    int seccomp_length;
};

/// `gust_spawn`, with the program started inside `entry`'s prepared sandbox: the child joins the
/// cgroups, sets the rlimits and the descriptors as `gust_spawn` does, then enters the holder's user
/// namespace, clones the release and socket directory as detached mounts from a private copy of the
/// host's mount namespace, enters the holder's mount namespace and unshares one of its own, attaches
/// them and mounts `/tmp` and `/dev/shm`, joins (or makes) PID, IPC and UTS namespaces and a cgroup
/// namespace, and forks the program's process as gustd's own child (CLONE_PARENT), which drops to
/// `uid`, loses every capability, loads the seccomp program and execs, in `request->directory`
/// inside. `*pid` is the program's process; PR_SET_PDEATHSIG (`parent_death_signal`) is set there.
/// `listen_pid_entry` is refused (EINVAL): the pid would be the first fork's.
int gust_spawn_entering(const struct gust_spawn_request *request, const struct gust_sandbox_entry *entry, pid_t *pid, int *step);

/// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC): a zygote's control
/// socket, whose messages keep their bounds and carry descriptors.
int gust_seqpacket_pair(int fds[2]);

/// pidfd_send_signal(2): `signal` to the process `pidfd` names (never one that took its pid
/// since). Returns 0, or the errno.
int gust_pidfd_send_signal(int pidfd, int signal);

/// Sends one message with `fd_count` descriptors (SCM_RIGHTS). Returns sendmsg's result.
ssize_t gust_send_with_fds(int socket, const void *bytes, size_t count, const int *fds, int fd_count);

/// Receives one message and up to `max_fds` descriptors (made close-on-exec);
/// `*fd_count` is set to how many came. Returns recvmsg's result.
ssize_t gust_receive_with_fds(int socket, void *bytes, size_t capacity, int *fds, int max_fds, int *fd_count);

/// Opens each of `paths` for writing as the app's uid `uid` (inside the user namespace of the
/// process `namespace_fd` names: a pidfd or /proc/PID/ns/user) instead of gustd's: a short-lived
/// child sharing gustd's memory and descriptors enters that namespace (where gustd's uid is 0,
/// with its capabilities), takes the app's uid as its effective one and CAP_DAC_OVERRIDE, and
/// opens them. For a zygote's fork, which writes itself into its instance's cgroups through
/// these: cgroup v1 accepts a pid written by a file opened with the credentials of its owner.
/// Returns 0 with `count` close-on-exec descriptors in `fds`, or an errno, the step in `step`
/// (1 enter the namespace, 2 the uid, 3 the capability, 4 the open).
int gust_open_as_app(int namespace_fd, unsigned uid, const char *const *paths, int count, int *fds, int *step);

#endif
