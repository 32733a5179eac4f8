"""The host's cgroup v2 mounts as /proc/self/mountinfo lists them, for the scripts that report or
remount them (bench.py, profile_cgroup_moves.py); gustd's own reader is `CgroupV2Mount`
(Sources/GustBuild/Limits), which reads the same fields.

Each line is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - TYPE SOURCE SUPER_OPTIONS`; the
superblock options (where `favordynmods` is set) come after the separator.
"""

V2_TARGETS = ('/sys/fs/cgroup', '/sys/fs/cgroup/unified')


def v2_mounts(mountinfo=None):
    """[(target, [superblock options])] of every cgroup v2 mount, in order; `mountinfo` is the
    text to read (this process's own by default)."""
    if mountinfo is None:
        with open('/proc/self/mountinfo') as f:
            mountinfo = f.read()
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if '-' not in fields:
            continue
        dash = fields.index('-')
        if dash >= 5 and len(fields) > dash + 3 and fields[dash + 1] == 'cgroup2':
            mounts.append((fields[4], fields[dash + 3].split(',')))
    return mounts


def v2_mount(mountinfo=None):
    """The cgroup v2 mount under /sys/fs/cgroup (the hybrid layout's `unified` too) and its
    superblock options, or None."""
    return next(((target, options) for target, options in v2_mounts(mountinfo) if target in V2_TARGETS), None)


def favordynmods(mountinfo=None):
    """'on' if a cgroup v2 mount has `favordynmods` (as gustd reads it: moves into cgroups wait
    ~10 ms without it), 'off' if none has, 'no v2 mount' without one."""
    mounts = v2_mounts(mountinfo)
    if not mounts:
        return 'no v2 mount'
    return 'on' if any('favordynmods' in options for _, options in mounts) else 'off'
