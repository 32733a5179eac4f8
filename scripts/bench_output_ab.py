#!/usr/bin/env python3
"""What an app printing past its log bound costs gustd, for two builds side by side
(docs/benchmarks.md, "Output past the log bound"): each gustd (its own home and cgroup root,
`--sandbox none`, the default `--log-rate` of 1 MB/s) serves the same app, whose op writes
LINES lines of WIDTH bytes to stdout as fast as it can; gustd's CPU time (all its threads, from
/proc/PID/stat) is read before the call and once it has stopped growing after it, and so is
the instance's. The builds take turns, ROUNDS times.

    scripts/bench_output_ab.py ROUNDS BEFORE_BIN_DIR AFTER_BIN_DIR [LINES [WIDTH]]

Each BIN_DIR holds gust, gust-receive and gustd, with buildpacks/ beside it or above it.
"""
import os, statistics, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench  # noqa: E402

SHOUT = '''import os
import gust

@gust.op('shout')
def shout(lines=1000000, width=100):
    chunk = (b'x' * (width - 1) + b'\\n') * 1000
    for _ in range(lines // 1000):
        os.write(1, chunk)
    return 'done'
'''

TICKS = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def settled_cpu(pid, quiet=0.5, bound=60):
    """The process's CPU time once it has not grown for `quiet` seconds (at most `bound`)."""
    last, since, deadline = cpu_seconds(pid), time.monotonic(), time.monotonic() + bound
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def main():
    arguments = sys.argv[1:]
    if len(arguments) < 3:
        sys.exit(__doc__)
    rounds, bins = int(arguments[0]), {'before': arguments[1], 'after': arguments[2]}
    lines = int(arguments[3]) if len(arguments) > 3 else 2_000_000
    width = int(arguments[4]) if len(arguments) > 4 else 100
    benches = bench.side_by_side(bins, rounds)
    results = {name: [] for name in benches}
    try:
        for b in benches.values():
            b.start_gustd('--sandbox', 'none', '--function-timeout', '300')
            b.push_app('shout', {'__init__.py': SHOUT})
            b.call('shout', 'shout', b'{"lines": 50000}')  # an instance up, its reader running
        order = list(benches)
        for r in range(rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                b = benches[name]
                instance = b.ps('shout')[0]['pid']
                gustd_before, instance_before = settled_cpu(b.gustd.pid), cpu_seconds(instance)
                started = time.perf_counter()
                b.call('shout', 'shout', f'{{"lines": {lines}, "width": {width}}}'.encode(), timeout=300)
                took = time.perf_counter() - started
                instance_cpu = cpu_seconds(instance) - instance_before
                gustd_cpu = settled_cpu(b.gustd.pid) - gustd_before
                results[name].append((gustd_cpu, instance_cpu, took))
                print(f'{name}: gustd {gustd_cpu:.2f} s CPU, the instance {instance_cpu:.2f} s, the call {took:.2f} s', flush=True)
    finally:
        bench.stop_side_by_side(benches)
    print(f'\n{lines:,} lines of {width} bytes past a 1 MB/s bound, {rounds} rounds each, medians:')
    for name, samples in results.items():
        gustd_cpu = statistics.median(s[0] for s in samples)
        instance_cpu = statistics.median(s[1] for s in samples)
        took = statistics.median(s[2] for s in samples)
        print(f'  {name}: gustd {gustd_cpu:.2f} s CPU, the instance {instance_cpu:.2f} s '
              f'({gustd_cpu / max(instance_cpu, 0.01):.1f}x), the call {took:.2f} s')


if __name__ == '__main__':
    main()
