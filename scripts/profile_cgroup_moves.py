#!/usr/bin/env python3
"""What moving a new process into its cgroups costs, with the cgroup v2 mount's `favordynmods`
off and on, taking turns (docs/operations.md, "Quick cgroup moves"; docs/benchmarks.md).

    sudo scripts/profile_cgroup_moves.py [--rounds 21] [--quiet 0.3]

Each round forks a child that only sleeps, waits --quiet seconds (a spell with no moves, as
between two scale-outs), then times writing the child's pid into a fresh cgroup of each v1
controller gustd uses (memory, pids, cpu; the v2 hierarchy where it has them), as gustd moves a
new instance. Root only: it remounts the v2 hierarchy and puts it back as it found it. The
cgroups are made under `gust-profile-moves/` and removed; the child is killed by its pid.
"""
import argparse
import ctypes
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cgroup_mounts import v2_mount  # noqa: E402  (the one mountinfo reader of the scripts)

MS_REMOUNT = 32
libc = ctypes.CDLL(None, use_errno=True)


def remount(target, options):
    data = ','.join(o for o in options if o != 'rw').encode()
    if libc.mount(None, target.encode(), None, MS_REMOUNT, ctypes.c_char_p(data)) != 0:
        raise OSError(ctypes.get_errno(), f'remount {target}')


def hierarchies():
    v1 = [f'/sys/fs/cgroup/{c}' for c in ('memory', 'pids', 'cpu') if os.path.exists(f'/sys/fs/cgroup/{c}/cgroup.procs')]
    if v1:
        return v1
    mount = v2_mount()
    return [mount[0]] if mount else []


def one_move(roots, quiet, index):
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    made = []
    try:
        for root in roots:
            path = f'{root}/gust-profile-moves/r{index}'
            os.makedirs(path, exist_ok=True)
            made.append(path)
        time.sleep(quiet)
        started = time.perf_counter()
        for path in made:
            with open(f'{path}/cgroup.procs', 'w') as f:
                f.write(str(child))
        return (time.perf_counter() - started) * 1000
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        for path in made:
            os.rmdir(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=21)
    parser.add_argument('--quiet', type=float, default=0.3, help='seconds with no move before each timed one')
    args = parser.parse_args()
    mount = v2_mount()
    roots = hierarchies()
    if os.geteuid() != 0 or mount is None or not roots:
        sys.exit('needs root, a cgroup v2 mount under /sys/fs/cgroup and cgroup hierarchies to move into')
    target, found = mount
    without = [o for o in found if o != 'favordynmods']
    samples = {'off': [], 'on': []}
    try:
        for index in range(args.rounds):
            for mode in (('off', 'on') if index % 2 == 0 else ('on', 'off')):
                remount(target, without + (['favordynmods'] if mode == 'on' else []))
                samples[mode].append(one_move(roots, args.quiet, index))
    finally:
        remount(target, found)
        for root in roots:
            try:
                os.rmdir(f'{root}/gust-profile-moves')
            except OSError:
                pass
    print(f'moves into {len(roots)} cgroup(s) ({", ".join(roots)}), {args.rounds} rounds, {args.quiet} s quiet before each; '
          f'load average {os.getloadavg()[0]:.1f}')
    for mode in ('off', 'on'):
        values = sorted(samples[mode])
        print(f'favordynmods {mode:3}: p50 {statistics.median(values):.2f} ms, min {values[0]:.2f}, max {values[-1]:.2f}')


if __name__ == '__main__':
    main()
