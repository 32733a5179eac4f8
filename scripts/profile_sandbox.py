#!/usr/bin/env python3
"""Where a sandboxed start's time goes: the steps of Gust's bubblewrap command line
(Sources/GustBuild/Sandbox/Sandbox.swift), added one at a time, each timed from spawn to
exit with /usr/bin/true (or python3) as the program, median of --rounds runs; the rows
take turns in each round. "before" is the command line with a wrapper shell, each /etc
entry bound on its own and an inner shell; "after" bwrap started directly, one /etc and
setpriv alone (the sysctl gustd writes from outside is not in it).

Run it as gustd's user (with a subordinate range for the uid-map rows), e.g.
    setpriv --reuid=gust --regid=gust --init-groups -- python3 scripts/profile_sandbox.py
As root, the rows that map app uids are skipped (gustd maps none as root either).
"""
import argparse
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

    uid_start = subordinate('/etc/subuid', os.environ.get('USER', ''))
    gid_start = subordinate('/etc/subgid', os.environ.get('USER', ''))
    if os.getuid() != 0 and uid_start is not None and gid_start is not None:
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
    shutil.rmtree(scratch)


if __name__ == '__main__':
    main()
