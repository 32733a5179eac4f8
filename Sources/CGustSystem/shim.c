#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>

#include "CGustSystem.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int gust_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int gust_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int gust_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

short gust_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

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
