#!/usr/bin/env python3
"""Where a sandboxed start's time goes: the steps of Gust's bubblewrap command line
(Sources/GustBuild/Sandbox/Sandbox.swift), added one at a time, each timed from spawn to
exit with /usr/bin/true (or python3) as the program, median of --rounds runs.

Run it as gustd's user (with a subordinate range for the uid-map rows), e.g.
    setpriv --reuid=gust --regid=gust --init-groups -- python3 scripts/profile_sandbox.py
As root, the rows that map app uids are skipped (gustd maps none as root either).
"""
import argparse
import os
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


def full_mounts(app, run):
    argv = base_mounts() + ['--perms', '0755', '--dir', '/etc', '--perms', '0755', '--dir', '/run']
    for name in ETC:
        argv += ['--ro-bind-try', '/etc/' + name, '/etc/' + name]
    argv += ['--proc', '/proc', '--dev', '/dev']
    argv += ['--size', str(64 << 20), '--perms', '1777', '--tmpfs', '/tmp']
    argv += ['--size', str(64 << 20), '--perms', '1777', '--tmpfs', '/dev/shm']
    argv += ['--ro-bind', app, '/app', '--bind', run, '/run/gust', '--chdir', '/app']
    return argv


NAMESPACES = ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
              '--die-with-parent', '--new-session', '--hostname', 'gust']


def timed(argv, rounds, **kwargs):
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


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


def mapped(argv, rounds, uid_start, gid_start, maps=True):
    """The full path with app uids: bwrap blocked on stdin, newuidmap/newgidmap, then let go."""
    times = []
    for _ in range(rounds):
        read_end, write_end = os.pipe()
        info = os.open('/dev/null', os.O_WRONLY)
        argv = [argv[0], '--info-fd', str(info)] + argv[1:]
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(info,))
        os.close(info)
        os.close(read_end)
        bwrap = process.pid
        child = first_child(bwrap)
        if maps:
            uid, gid = os.getuid(), os.getgid()
            helpers = [subprocess.Popen(['/usr/bin/newuidmap', str(child), '0', str(uid), '1', '1000', str(uid_start + 1), '1']),
                       subprocess.Popen(['/usr/bin/newgidmap', str(child), '0', str(gid), '1', '1000', str(gid_start + 1), '1'])]
            if maps == 'serial':
                helpers[0].wait()
                helpers[1].wait()
            else:
                for helper in helpers:
                    helper.wait()
        os.write(write_end, b'1')
        os.close(write_end)
        process.wait()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


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

    def row(name, ms):
        rows.append((name, ms))
        print(f'{name:<72} {ms:7.2f} ms', flush=True)

    row('/usr/bin/true', timed(true, args.rounds))
    row('a shell that waits for it (sh -c \'"$0" "$@"; exit $?\')', timed(['/bin/sh', '-c', '"$0" "$@"; exit $?'] + true, args.rounds))
    row('bwrap, user and PID namespaces, /usr only', timed([BWRAP, '--unshare-user', '--unshare-pid'] + base_mounts() + ['--'] + true, args.rounds))
    for flag in ['--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try']:
        row(f'bwrap, user and PID namespaces and {flag[2:]}, /usr only',
            timed([BWRAP, '--unshare-user', '--unshare-pid', flag] + base_mounts() + ['--'] + true, args.rounds))
    row('bwrap, all of Gust\'s namespaces, /usr only', timed([BWRAP] + NAMESPACES + base_mounts() + ['--'] + true, args.rounds))
    full = [BWRAP] + NAMESPACES + ['--uid', '1000', '--gid', '1000', '--disable-userns'] + full_mounts(app, run)
    row('bwrap, Gust\'s namespaces and mounts (/etc, /proc, /dev, two tmpfs, /app, /run/gust)', timed(full + ['--'] + true, args.rounds))
    without_dev = [a for a in full]
    i = without_dev.index('--dev')
    del without_dev[i:i + 2]
    row('  the same without --dev /dev', timed(without_dev + ['--'] + true, args.rounds))
    without_etc = [BWRAP] + NAMESPACES + ['--uid', '1000', '--gid', '1000', '--disable-userns'] + [
        a for a in full_mounts(app, run)]
    j = without_etc.index('--ro-bind-try')
    del without_etc[j:j + 3 * len(ETC)]
    row('  the same without the /etc files', timed(without_etc + ['--'] + true, args.rounds))
    row('python3 -c pass', timed(python, args.rounds))
    row('python3 -c pass in the sandbox (no uid map)', timed(full + ['--'] + python, args.rounds))

    uid_start = subordinate('/etc/subuid', os.environ.get('USER', ''))
    gid_start = subordinate('/etc/subgid', os.environ.get('USER', ''))
    if os.getuid() != 0 and uid_start is not None and gid_start is not None:
        blocked = [BWRAP] + NAMESPACES + ['--userns-block-fd', '0', '--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID',
                                          '--cap-add', 'CAP_SYS_RESOURCE'] + full_mounts(app, run) + ['--']
        inner = ['/bin/sh', '-c', 'echo 0 > /proc/sys/user/max_user_namespaces || exit 125\numask 000\n'
                 'exec /usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all -- "$@" </dev/null',
                 'gust-sandbox']
        row('app uid: blocked bwrap, newuidmap then newgidmap, inner sh, setpriv', mapped(blocked + inner + true, args.rounds, uid_start, gid_start, 'serial'))
        row('app uid: the same, newuidmap and newgidmap side by side', mapped(blocked + inner + true, args.rounds, uid_start, gid_start, True))
        row('app uid: python3 -c pass, maps side by side', mapped(blocked + inner + python, args.rounds, uid_start, gid_start, True))
    else:
        print('(app uid rows skipped: run as gustd\'s user with a subordinate range)')
    os.rmdir(app)
    os.rmdir(run)
    os.rmdir(scratch)


if __name__ == '__main__':
    main()
