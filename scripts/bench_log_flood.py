#!/usr/bin/env python3
"""gustd's CPU while an app floods its output past its log bound, two builds side by side
(docs/security.md, "App logs"): an op writes 64 KiB blocks of newlines for 3 s under
`--log-rate 10K`, and gustd's user + system time over the call is read from /proc.

    scripts/bench_log_flood.py BEFORE_BIN_DIR AFTER_BIN_DIR [ROUNDS]

Each BIN_DIR holds gust, gust-receive and gustd, with buildpacks/ beside it or above it.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench  # noqa: E402

FLOOD = '''import os, time
import gust

@gust.op('flood')
def flood(seconds=3.0):
    end = time.monotonic() + seconds
    block = b"\\n" * 65536
    n = 0
    while time.monotonic() < end:
        os.write(1, block)
        n += 1
    return {'blocks': n}
'''


def cpu_seconds(pid):
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    benches = bench.side_by_side({'before': sys.argv[1], 'after': sys.argv[2]}, rounds)
    try:
        for b in benches.values():
            b.start_gustd('--sandbox', 'none', '--log-rate', '10K')
            b.push_app('flood', {'main.py': FLOOD, 'requirements.txt': ''})
        for _ in range(rounds):
            for name, b in benches.items():
                before, started = cpu_seconds(b.gustd.pid), time.time()
                answer = b.call('flood', 'flood', b'{"seconds": 3}')
                print(f"{name:6} gustd CPU {cpu_seconds(b.gustd.pid) - before:.2f} s over {time.time() - started:.1f} s; "
                      f"the app wrote {answer['blocks']} blocks of 64 KiB", flush=True)
    finally:
        bench.stop_side_by_side(benches)


if __name__ == '__main__':
    main()
