#!/usr/bin/env python3
"""What a full garbage collection in a fork of a zygote copies of the zygote's memory, with and
without `gc.freeze()` before the fork (docs/benchmarks.md, "Where a cold start goes"). Each run
imports the runtime and an app as a zygote does, optionally freezes, forks, and in the fork reads
`Private_Dirty` of /proc/self/smaps_rollup before and after `gc.collect()`.

    scripts/bench_fork_gc.py [APP_DIRECTORY] [--rounds N]

APP_DIRECTORY holds `main.py` (default: a small app importing gust and json, written to a
temporary directory); the runtime is this checkout's buildpacks/python/runtime, and the
interpreter the one running this script (flask and the like must be importable by it).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

RUNTIME = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'buildpacks', 'python', 'runtime')
APP = 'import json\n\nimport gust\n\n\n@gust.op\ndef ping(n=0):\n    return {"n": n}\n'

# Run in a fresh interpreter per sample: argv[1] is "freeze" or "plain".
CHILD = r'''
import gc, os, sys, time
import gust.server, gust.zygote, main
if sys.argv[1] == "freeze":
    gc.freeze()
def private_dirty():
    with open("/proc/self/smaps_rollup") as rollup:
        return next(int(line.split()[1]) for line in rollup if line.startswith("Private_Dirty:"))
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    before = private_dirty()
    started = time.perf_counter()
    gc.collect()
    took = (time.perf_counter() - started) * 1000
    os.write(write, f"{private_dirty() - before} {took}".encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(read, 100).decode())
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('app', nargs='?', help='a directory with main.py')
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        app = args.app
        if app is None:
            app = scratch
            with open(os.path.join(app, 'main.py'), 'w') as f:
                f.write(APP)
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(RUNTIME), app]))
        for mode in ('plain', 'freeze'):
            copied, took = [], []
            for _ in range(args.rounds):
                out = subprocess.run([sys.executable, '-c', CHILD, mode], env=environment, cwd=app,
                                     capture_output=True, text=True, check=True).stdout.split()
                copied.append(int(out[0]))
                took.append(float(out[1]))
            print(f'{mode:6}  a full collection in the fork copied {statistics.median(copied) / 1024:.2f} MiB '
                  f'of the zygote\'s pages and took {statistics.median(took):.2f} ms (medians of {args.rounds})')


if __name__ == '__main__':
    main()
