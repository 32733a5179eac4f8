// Linux process primitives that Glibc's Swift overlay does not import without
// _GNU_SOURCE: what gustd needs to spawn instances safely.
#ifndef CGUSTSYSTEM_H
#define CGUSTSYSTEM_H

#include <spawn.h>

/// pipe2(fds, O_CLOEXEC): both ends close on exec, atomically, so an instance
/// started by another thread at the same moment never inherits them.
int gust_pipe_cloexec(int fds[2]);

/// posix_spawn_file_actions_addchdir_np (glibc 2.29+).
int gust_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// POSIX_SPAWN_SETSID (glibc 2.26+): the child leads a new session and process group.
short gust_spawn_setsid_flag(void);

#endif
