#!/usr/bin/env python3
"""Stack builds, measured (docs/benchmarks.md, "Stacks"):

    scripts/bench_stacks.py --bin .build/release [--suites bookworm trixie] [--without-npm]

For each suite, `gust stacks build SUITE` into a throwaway GUST_HOME (mmdebstrap from
Debian's archive, nothing cached between builds: every package is downloaded again),
timed from start to exit, and the stack's size as stack.json records it (du of rootfs/,
hard links once). Prints one line per build and a table. Needs root (mmdebstrap's root
mode) and the network. Python 3 standard library only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def build(gust, suite, without_npm):
    home = tempfile.mkdtemp(prefix='gust-bench-stacks-')
    try:
        os.makedirs(home, exist_ok=True)
        command = [gust, 'stacks', 'build', suite, '--home', home] + (['--without-npm'] if without_npm else [])
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            sys.exit(f'{" ".join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}')
        with open(os.path.join(home, 'stacks', f'{suite}@1', 'stack.json')) as f:
            stack = json.load(f)
        return seconds, stack
    finally:
        # The rootfs is read-only: give its directories write back, then remove it all.
        subprocess.run(['chmod', '-R', 'u+w', home], check=False)
        shutil.rmtree(home, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='the directory holding the built gust')
    parser.add_argument('--suites', nargs='+', default=['bookworm', 'trixie'])
    parser.add_argument('--without-npm', action='store_true', help='build stacks without npm, as the tests do')
    args = parser.parse_args()
    gust = os.path.join(args.bin, 'gust')
    rows = []
    for suite in args.suites:
        seconds, stack = build(gust, suite, args.without_npm)
        size = stack['sizeBytes'] / 1e6
        print(f'{suite}: {seconds:.0f} s, {size:.0f} MB, Python {stack.get("python")}, Node {stack.get("node")}', flush=True)
        rows.append((suite, seconds, size, stack.get('python'), stack.get('node')))
    npm = 'without npm' if args.without_npm else 'with npm'
    print(f'\n| stack ({npm}) | build | size | Python | Node |\n| --- | --- | --- | --- | --- |')
    for suite, seconds, size, python, node in rows:
        print(f'| {suite} | {seconds:.0f} s | {size:.0f} MB | {python} | {node} |')


if __name__ == '__main__':
    main()
