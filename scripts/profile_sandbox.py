#!/usr/bin/env python3
"""Where a sandboxed start's time goes: the steps of Gust's bubblewrap command line
(Sources/GustBuild/Sandbox/Sandbox.swift), added one at a time, each timed from spawn to
exit with /usr/bin/true (or python3) as the program, median of --rounds runs; the rows
take turns in each round. "before" is the command line with a wrapper shell, each /etc
entry bound on its own and an inner shell; "after" bwrap started directly, one /etc and
setpriv alone (the sysctl gustd writes from outside is not in it).

The "prepared" rows (issue 12, fifth pass) measure the other way to start, not built into gustd:
a holder sandbox made once with bwrap (and the uid map), kept alive, and per start a fork that
enters its user namespace, clones the release and the socket directory as detached mounts
(open_tree) from a private copy of the host's mount namespace, enters the holder's mount
namespace, unshares a fresh one, attaches them at /app and /run/gust, mounts /tmp and /dev/shm,
joins (or makes fresh) PID, IPC and UTS namespaces, drops to the app's uid and execs
(PreparedSandbox below; docs/benchmarks.md, "Entering a prepared sandbox").

Run it as gustd's user (with a subordinate range for the uid-map rows), e.g.
    setpriv --reuid=gust --regid=gust --init-groups -- python3 scripts/profile_sandbox.py
As root, the rows that map app uids are skipped (gustd maps none as root either).
"""
import argparse
import ctypes
import fcntl
import os
import shutil
import stat
import statistics
import subprocess
import tempfile
import time

BWRAP = '/usr/bin/bwrap'
ETC = ['resolv.conf', 'hosts', 'nsswitch.conf', 'host.conf', 'gai.conf', 'services', 'protocols', 'ssl',
       'ca-certificates', 'ca-certificates.conf', 'localtime', 'timezone', 'alternatives', 'mime.types',
       'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'passwd', 'group']


def base_mounts():
    argv = ['--ro-bind', '/usr', '/usr']
    for link in ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']:
        path = '/' + link
        if os.path.islink(path):
            argv += ['--symlink', os.readlink(path), path]
        elif os.path.exists(path):
            argv += ['--ro-bind', path, path]
    return argv


def prepared_etc(directory):
    """What gustd makes once at its start (Sources/GustBuild/Sandbox/SandboxEtc.swift): the ETC entries
    copied into one directory, a top-level link kept where it points into /usr, else followed."""
    etc = os.path.join(directory, 'sandbox-etc')
    os.mkdir(etc)
    os.chmod(etc, 0o755)
    for name in ETC:
        source, target = '/etc/' + name, os.path.join(etc, name)
        if not os.path.lexists(source) or not os.path.exists(source):
            continue
        if os.path.islink(source) and os.path.realpath(source).startswith('/usr/'):
            os.symlink(os.readlink(source), target)
            continue
        copy(os.path.realpath(source), target)
    return etc


def copy(source, target):
    """A link as a link, a directory recursively; what others may not read, empty."""
    mode = os.lstat(source).st_mode
    readable = mode & stat.S_IROTH
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISDIR(mode):
        os.mkdir(target, 0o700)
        for name in sorted(os.listdir(source)) if readable else []:
            copy(os.path.join(source, name), os.path.join(target, name))
        os.chmod(target, stat.S_IMODE(mode) & 0o777)
    elif stat.S_ISREG(mode):
        with open(target, 'wb') as out:
            if readable:
                with open(source, 'rb') as f:
                    out.write(f.read())
        os.chmod(target, stat.S_IMODE(mode) & 0o777)


def full_mounts(app, run, etc=None):
    argv = base_mounts()
    if etc:
        argv += ['--ro-bind', etc, '/etc', '--perms', '0755', '--dir', '/run']
    else:
        argv += ['--perms', '0755', '--dir', '/etc', '--perms', '0755', '--dir', '/run']
        for name in ETC:
            argv += ['--ro-bind-try', '/etc/' + name, '/etc/' + name]
    argv += ['--proc', '/proc', '--dev', '/dev']
    argv += ['--size', str(64 << 20), '--perms', '1777', '--tmpfs', '/tmp']
    argv += ['--size', str(64 << 20), '--perms', '1777', '--tmpfs', '/dev/shm']
    argv += ['--ro-bind', app, '/app', '--bind', run, '/run/gust', '--chdir', '/app']
    return argv


NAMESPACES = ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
              '--die-with-parent', '--new-session', '--hostname', 'gust']


def timed(argv):
    """One run of argv, spawn to exit (ms)."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def first_child(pid):
    for _ in range(20000):
        try:
            with open(f'/proc/{pid}/task/{pid}/children') as f:
                children = f.read().split()
            if children:
                return int(children[0])
        except FileNotFoundError:
            return None
        time.sleep(0.00005)
    return None


def subordinate(path, user):
    with open(path) as f:
        for line in f:
            name, start, count = line.strip().split(':')
            if name in (user, str(os.getuid())):
                return int(start)
    return None


def mapped(argv, uid_start, gid_start, maps='serial', wrapped=False):
    """One run of the full path with app uids (ms): bwrap blocked on stdin (under a wrapper shell that
    opens its info descriptor when `wrapped`), newuidmap and newgidmap, then let go."""
    read_end, write_end = os.pipe()
    info = os.open('/dev/null', os.O_WRONLY)
    if wrapped:
        argv = ['/bin/sh', '-c', f'"$0" "$@" 3>/dev/null; exit $?', argv[0], '--info-fd', '3'] + argv[1:]
    else:
        argv = [argv[0], '--info-fd', str(info)] + argv[1:]
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(info,))
    os.close(info)
    os.close(read_end)
    bwrap = first_child(process.pid) if wrapped else process.pid
    child = first_child(bwrap)
    uid, gid = os.getuid(), os.getgid()
    helpers = [['/usr/bin/newuidmap', str(child), '0', str(uid), '1', '1000', str(uid_start + 1), '1'],
               ['/usr/bin/newgidmap', str(child), '0', str(gid), '1', '1000', str(gid_start + 1), '1']]
    if maps == 'serial':
        for helper in helpers:
            subprocess.run(helper, check=True)
    else:
        for helper in [subprocess.Popen(helper) for helper in helpers]:
            helper.wait()
    os.write(write_end, b'1')
    os.close(write_end)
    process.wait()
    return (time.perf_counter() - started) * 1000


class PreparedSandbox:
    """A holder sandbox made once (bwrap, and the uid map when `ids`), and starts that enter it.

    Each start (`start`) forks; the child, single-threaded, enters the holder's user namespace
    (its owner's first where bwrap nested one, as it does for --uid without a block descriptor),
    unshares a private copy of the host's mount namespace only to clone the release and the socket
    directory as detached mounts, enters the holder's mount namespace and unshares a fresh one
    (private propagation), attaches them read-only at /app and writable at /run/gust, mounts its
    own /tmp and /dev/shm, then either joins the holder's PID, IPC and UTS namespaces
    (`fresh_pid` False) or makes new ones and mounts their /proc, drops every capability and
    becomes inside uid 1000, and execs. The holder's namespaces never hold a host path.
    """
    CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x02000000, 0x04000000, 0x08000000
    CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
    MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18
    SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR, SYS_CAPSET = 428, 429, 442, 126
    OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_FDCWD, AT_EMPTY_PATH, MOVE_MOUNT_F_EMPTY_PATH = 1, 0o2000000, -100, 0x1000, 4
    MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
    NS_GET_USERNS = 0xb701

    class MountAttr(ctypes.Structure):
        _fields_ = [('attr_set', ctypes.c_uint64), ('attr_clr', ctypes.c_uint64),
                    ('propagation', ctypes.c_uint64), ('userns_fd', ctypes.c_uint64)]

    def __init__(self, etc, ids=None):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        argv = [BWRAP] + NAMESPACES + base_mounts() + ['--ro-bind', etc, '/etc', '--perms', '0755', '--dir', '/run',
                                                       '--proc', '/proc', '--dev', '/dev', '--perms', '0755', '--dir', '/app',
                                                       '--perms', '0755', '--dir', '/run/gust', '--perms', '1777', '--dir', '/tmp']
        if ids is None:
            argv[1:1] = ['--uid', '1000', '--gid', '1000']
            self.bwrap = subprocess.Popen(argv + ['--', '/usr/bin/sleep', 'infinity'], stdin=subprocess.DEVNULL)
            holder = first_child(first_child(self.bwrap.pid))
        else:
            read_end, write_end = os.pipe()
            info = os.open('/dev/null', os.O_WRONLY)
            argv[1:1] = ['--userns-block-fd', '0', '--info-fd', str(info)]
            self.bwrap = subprocess.Popen(argv + ['--', '/usr/bin/sleep', 'infinity'], stdin=read_end, pass_fds=(info,))
            os.close(read_end)
            os.close(info)
            child = first_child(self.bwrap.pid)
            uid_start, gid_start = ids
            subprocess.run(['/usr/bin/newuidmap', str(child), '0', str(os.getuid()), '1', '1000', str(uid_start + 1), '1'], check=True)
            subprocess.run(['/usr/bin/newgidmap', str(child), '0', str(os.getgid()), '1', '1000', str(gid_start + 1), '1'], check=True)
            os.write(write_end, b'1')
            os.close(write_end)
            holder = first_child(child)
        for _ in range(20000):  # its namespaces are final once bwrap's last child runs the program
            try:
                if os.readlink(f'/proc/{holder}/exe') == '/usr/bin/sleep':
                    break
            except OSError:
                pass
            time.sleep(0.0001)
        self.holder = holder
        self.fds = {name: os.open(f'/proc/{holder}/ns/{name}', os.O_RDONLY | os.O_CLOEXEC) for name in ['user', 'mnt', 'pid', 'ipc', 'uts']}
        self.owner = fcntl.ioctl(self.fds['mnt'], self.NS_GET_USERNS)
        self.nested = os.fstat(self.owner).st_ino != os.fstat(self.fds['user']).st_ino
        with open(f'/proc/{holder}/setgroups') as f:
            self.may_setgroups = f.read().strip() == 'allow'

    def stop(self):
        self.bwrap.kill()
        self.bwrap.wait()
        for fd in list(self.fds.values()) + [self.owner]:
            os.close(fd)

    def check(self, result, what):
        if result < 0:
            error = ctypes.get_errno()
            os.write(2, f'{what}: {os.strerror(error)}\n'.encode())
            os._exit(100)
        return result

    def start(self, app, run, argv, fresh_pid=False):
        """One start of argv in the prepared sandbox, fork to exit (ms)."""
        started = time.perf_counter()
        child = os.fork()
        if child == 0:
            self.enter(app, run, argv, fresh_pid)
        _, status = os.waitpid(child, 0)
        if status != 0:
            raise RuntimeError(f'a prepared start failed ({status})')
        return (time.perf_counter() - started) * 1000

    def enter(self, app, run, argv, fresh_pid):
        c, attr = self.libc, self.MountAttr
        try:
            c.setns(self.owner, self.CLONE_NEWUSER) == 0 or self.check(-1, 'setns user')
            c.unshare(self.CLONE_NEWNS) == 0 or self.check(-1, 'unshare (a copy of the host\'s)')
            flags = self.OPEN_TREE_CLONE | self.OPEN_TREE_CLOEXEC
            release = self.check(c.syscall(self.SYS_OPEN_TREE, self.AT_FDCWD, app.encode(), flags), 'open_tree app')
            sockets = self.check(c.syscall(self.SYS_OPEN_TREE, self.AT_FDCWD, run.encode(), flags), 'open_tree run')
            for fd, bits in [(release, self.MOUNT_ATTR_RDONLY), (sockets, 0)]:
                setting = attr(bits | self.MOUNT_ATTR_NOSUID | self.MOUNT_ATTR_NODEV, 0, 0, 0)
                self.check(c.syscall(self.SYS_MOUNT_SETATTR, fd, b'', self.AT_EMPTY_PATH, ctypes.byref(setting), ctypes.sizeof(setting)), 'mount_setattr')
            c.setns(self.fds['mnt'], self.CLONE_NEWNS) == 0 or self.check(-1, 'setns mnt')
            c.unshare(self.CLONE_NEWNS) == 0 or self.check(-1, 'unshare mnt')
            c.mount(None, b'/', None, self.MS_REC | self.MS_PRIVATE, None) == 0 or self.check(-1, 'private')
            for fd, target in [(release, b'/app'), (sockets, b'/run/gust')]:
                self.check(c.syscall(self.SYS_MOVE_MOUNT, fd, b'', self.AT_FDCWD, target, self.MOVE_MOUNT_F_EMPTY_PATH), 'move_mount')
            for target in [b'/tmp', b'/dev/shm']:
                c.mount(b'tmpfs', target, b'tmpfs', self.MS_NOSUID | self.MS_NODEV, f'size={64 << 20},mode=1777'.encode()) == 0 or self.check(-1, 'tmpfs')
            if fresh_pid:
                c.unshare(self.CLONE_NEWPID | self.CLONE_NEWIPC | self.CLONE_NEWUTS | self.CLONE_NEWCGROUP) == 0 or self.check(-1, 'unshare')
                c.sethostname(b'gust', 4) == 0 or self.check(-1, 'sethostname')
            else:
                for name, kind in [('ipc', self.CLONE_NEWIPC), ('uts', self.CLONE_NEWUTS), ('pid', self.CLONE_NEWPID)]:
                    c.setns(self.fds[name], kind) == 0 or self.check(-1, 'setns ' + name)
                c.unshare(self.CLONE_NEWCGROUP) == 0 or self.check(-1, 'unshare cgroup')
            # The PID namespace applies to children: the program runs in a second fork (gustd's would
            # be CLONE_PARENT, so that it is gustd's child; here the first fork waits).
            program = os.fork()
            if program:
                _, status = os.waitpid(program, 0)
                os._exit(os.waitstatus_to_exitcode(status) & 0xff)
            if fresh_pid:
                c.mount(b'proc', b'/proc', b'proc', self.MS_NOSUID | self.MS_NODEV | self.MS_NOEXEC, None) == 0 or self.check(-1, 'proc')
            if self.nested:
                c.setns(self.fds['user'], self.CLONE_NEWUSER) == 0 or self.check(-1, 'setns the holder\'s own user namespace')
            os.chdir('/app')
            for capability in range(64):
                if c.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, up to the first the kernel does not know
                    break
            if self.may_setgroups:
                os.setgroups([])
            os.setresgid(1000, 1000, 1000)
            os.setresuid(1000, 1000, 1000)
            header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
            self.check(c.syscall(self.SYS_CAPSET, header, data), 'capset')
            c.prctl(38, 1, 0, 0, 0) == 0 or self.check(-1, 'no_new_privs')
            os.execv(argv[0], argv)
        except BaseException as error:  # never return into the parent's code
            os.write(2, f'{error}\n'.encode())
            os._exit(101)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=30)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp()
    app, run = os.path.join(scratch, 'app'), os.path.join(scratch, 'run')
    os.mkdir(app)
    os.mkdir(run)
    true = ['/usr/bin/true']
    python = ['/usr/bin/python3', '-c', 'pass']
    rows = []

    def row(name, trial):
        rows.append((name, trial))

    row('/usr/bin/true', lambda: timed(true))
    row('a shell that waits for it (sh -c \'"$0" "$@"; exit $?\')', lambda: timed(['/bin/sh', '-c', '"$0" "$@"; exit $?'] + true))
    row('bwrap, user and PID namespaces, /usr only', lambda: timed([BWRAP, '--unshare-user', '--unshare-pid'] + base_mounts() + ['--'] + true))
    row('bwrap, all of Gust\'s namespaces, /usr only', lambda: timed([BWRAP] + NAMESPACES + base_mounts() + ['--'] + true))
    full = [BWRAP] + NAMESPACES + ['--uid', '1000', '--gid', '1000', '--disable-userns'] + full_mounts(app, run)
    row('bwrap, Gust\'s namespaces and mounts (each /etc entry, /proc, /dev, two tmpfs, /app, /run/gust)', lambda: timed(full + ['--'] + true))
    without_etc = list(full)
    j = without_etc.index('--ro-bind-try')
    del without_etc[j:j + 3 * len(ETC)]
    row('  the same without the /etc entries', lambda: timed(without_etc + ['--'] + true))
    etc = prepared_etc(scratch)
    one_etc = [BWRAP] + NAMESPACES + ['--uid', '1000', '--gid', '1000', '--disable-userns'] + full_mounts(app, run, etc)
    row('  the same with /etc as one prepared directory', lambda: timed(one_etc + ['--'] + true))
    live = one_etc + ['--ro-bind-try', '/etc/resolv.conf', '/etc/resolv.conf', '--ro-bind-try', '/etc/hosts', '/etc/hosts']
    row('  the same, resolv.conf and hosts bound over it', lambda: timed(live + ['--'] + true))
    wrapper = ['/bin/sh', '-c', '"$0" "$@"; exit $?']
    row('no app uid, before: wrapper shell, bwrap with each /etc entry', lambda: timed(wrapper + full + ['--'] + true))
    row('no app uid, after: bwrap with one /etc', lambda: timed(one_etc + ['--'] + true))
    row('python3 -c pass', lambda: timed(python))
    row('python3 -c pass in the sandbox (no uid map)', lambda: timed(one_etc + ['--'] + python))

    holders = []

    def two_forks():
        """What a prepared start costs in this script before its namespaces: Python forks twice (the
        program runs in a second fork, in the PID namespace) and waits; gustd's C fork is cheaper."""
        started = time.perf_counter()
        child = os.fork()
        if child == 0:
            program = os.fork()
            if program:
                os.waitpid(program, 0)
                os._exit(0)
            os.execv(true[0], true)
        os.waitpid(child, 0)
        return (time.perf_counter() - started) * 1000

    row('two Python forks and exec of /usr/bin/true (the prepared rows\' own overhead)', two_forks)

    def prepared_rows(label, ids):
        holder = PreparedSandbox(etc, ids)
        holders.append(holder)
        row(f'{label}, prepared: enter a holder\'s user, mount, PID, IPC, UTS namespaces', lambda: holder.start(app, run, true))
        row(f'{label}, prepared: the same with fresh PID, IPC, UTS namespaces and /proc', lambda: holder.start(app, run, true, fresh_pid=True))

    prepared_rows('no app uid', None)
    uid_start = subordinate('/etc/subuid', os.environ.get('USER', ''))
    gid_start = subordinate('/etc/subgid', os.environ.get('USER', ''))
    if os.getuid() != 0 and uid_start is not None and gid_start is not None:
        prepared_rows('app uid', (uid_start, gid_start))
        capabilities = ['--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID']
        blocked = [BWRAP] + NAMESPACES + ['--userns-block-fd', '0'] + capabilities + ['--cap-add', 'CAP_SYS_RESOURCE']
        inner = ['/bin/sh', '-c', 'echo 0 > /proc/sys/user/max_user_namespaces || exit 125\numask 000\n'
                 'exec /usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all -- "$@" </dev/null',
                 'gust-sandbox']
        setpriv = ['/usr/bin/setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', '--inh-caps=-all', '--']
        before = blocked + full_mounts(app, run) + ['--'] + inner
        after = [BWRAP] + NAMESPACES + ['--userns-block-fd', '0'] + capabilities + full_mounts(app, run, etc) + ['--'] + setpriv
        row('app uid, before: wrapper sh, blocked bwrap (each /etc entry), newuidmap, newgidmap, inner sh, setpriv',
            lambda: mapped(before + true, uid_start, gid_start, wrapped=True))
        row('  the same without the wrapper shell', lambda: mapped(before + true, uid_start, gid_start))
        row('  the same, /etc as one directory', lambda: mapped(blocked + full_mounts(app, run, etc) + ['--'] + inner + true, uid_start, gid_start))
        row('app uid, after: blocked bwrap (one /etc), newuidmap, newgidmap, setpriv', lambda: mapped(after + true, uid_start, gid_start))
        row('  the same, newuidmap and newgidmap side by side', lambda: mapped(after + true, uid_start, gid_start, maps=True))
        row('app uid, after: python3 -c pass', lambda: mapped(after + python, uid_start, gid_start))
    else:
        print('(app uid rows skipped: run as gustd\'s user with a subordinate range)')

    # The rows take turns, round after round, so that a loaded machine's swings fall on all of them.
    samples = [[] for _ in rows]
    for _ in range(args.rounds):
        for index, (_, trial) in enumerate(rows):
            samples[index].append(trial())
    for (name, _), times in zip(rows, samples):
        print(f'{name:<100} {statistics.median(times):7.2f} ms', flush=True)
    for holder in holders:
        holder.stop()
    shutil.rmtree(scratch)


if __name__ == '__main__':
    main()
