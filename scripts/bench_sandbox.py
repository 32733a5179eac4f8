#!/usr/bin/env python3
"""What the sandbox adds, measured side by side (docs/benchmarks.md, "The sandbox side by side"):

    scripts/bench_sandbox.py --bin .build/release [--turns 15] [--blocks 40] [--user gust-sandbox-test]

Three gustds run at once, each with its own home, port and cgroup root, the same app pushed to
each: `none` (--sandbox none), `bubblewrap` (--sandbox bubblewrap) and `none-again`, a second
--sandbox none that measures nothing but this bench's own resolution: what it reports between
`none` and `none-again` is noise and bias, so a difference between `none` and `bubblewrap` no
larger than that is not shown. Every sample is taken from each gustd in turn (the order rotating),
so a busy machine's drift falls on all three; each difference is paired within a turn.

  warm call        blocks of 250 sequential calls of an op over one keep-alive connection per gustd;
                   the p50 of every call and the median of the per-block p50 differences.
  scale-out        the one instance busy with a slow call, a second call needs a new instance
                   (a fork of the release's zygote, in the app's sandbox under bubblewrap).
  cold start, gustd running
                   the app scaled to zero and its zygote stopped (what gustd keeps per app stays:
                   under bubblewrap the app's prepared sandbox, its holder); the first call.
  first call after gustd's start
                   gustd stopped and started, the first call at once (it races the making of the
                   app's holder, which gustd begins at its start) and after --settle seconds.

With --user NAME every gustd runs as that user, which needs a subordinate uid range in
/etc/subuid and /etc/subgid: each app then runs as a host uid of its own (newuidmap). Root
only for --user. Prints medians, paired differences (their median with a 95 % bootstrap
interval, quartiles, turns positive) and the load average before and after each part.
"""

import argparse
import http.client
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time

spec = importlib.util.spec_from_file_location('bench', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bench.py'))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

APP = 'starts'
MODES = {'none': 'none', 'bubblewrap': 'bubblewrap', 'none-again': 'none'}
BLOCK = 250
PARTS = ['warm', 'scale_out', 'cold_running', 'first_call', 'first_call_settled']


def load():
    with open('/proc/loadavg') as f:
        return float(f.read().split()[0])


def rotations(turn):
    """The three gustds in an order that rotates each turn, so none is always first."""
    names = list(MODES)
    shift = turn % len(names)
    return names[shift:] + names[:shift]


def warm_calls(benches, blocks):
    connections = {name: http.client.HTTPConnection('127.0.0.1', b.port) for name, b in benches.items()}
    path = f'/apps/{APP}/_/functions/ping'

    def call(name):
        connection = connections[name]
        started = time.perf_counter_ns()
        connection.request('POST', path, body=b'{}', headers={'Content-Type': 'application/json'})
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter_ns() - started
        if response.status != 200:
            sys.exit(f'{name}: {path} answered {response.status}')
        return elapsed / 1e6

    for name in benches:  # warm both sides up
        for _ in range(300):
            call(name)
    every = {name: [] for name in benches}
    per_block = {name: [] for name in benches}
    for block in range(blocks):
        for name in rotations(block):
            samples = [call(name) for _ in range(BLOCK)]
            every[name].extend(samples)
            per_block[name].append(statistics.median(samples))
    for connection in connections.values():
        connection.close()
    return {'p50': {name: statistics.median(samples) for name, samples in every.items()},
            'p99': {name: sorted(samples)[int(len(samples) * 0.99)] for name, samples in every.items()},
            'samples': per_block, 'calls_each': blocks * BLOCK}


def scale_outs(benches, turns):
    for b in benches.values():
        b.gust('scale', APP, '--min', '1', '--max', '2', '--idle', '1s')
        b.call(APP, 'ping')
    samples = {name: [] for name in benches}
    for turn in range(turns + 1):  # the first turn warms up
        for name in rotations(turn):
            b = benches[name]
            b.wait_until(lambda: len(b.ps(APP)) == 1, 30, f'{name}: the extra instance to stop after idle')
            busy = threading.Thread(target=b.call, args=(APP, 'slow', b'{"seconds": 0.6}'))
            busy.start()
            b.wait_until(lambda: any(i['state'] == 'busy' for i in b.ps(APP)), 10, f'{name}: the slow call to start')
            took = b.timed_call(APP, 'ping')[0]
            busy.join()
            if turn:
                samples[name].append(took)
    return samples


def stopped(b):
    """Nothing of the app runs: no instance and no zygote (`gust ps` lists a zygote too)."""
    return not json.loads(b.gust('ps', APP, '--json'))


def cold_starts(benches, turns):
    for b in benches.values():
        b.gust('scale', APP, '--min', '0', '--max', '2', '--idle', '1s')
    samples = {name: [] for name in benches}
    for turn in range(turns + 1):
        for b in benches.values():
            b.wait_until(lambda: stopped(b), 60, 'the instance and the zygote to stop after idle')
        for name in rotations(turn):
            took = benches[name].timed_call(APP, 'ping')[0]
            if turn:
                samples[name].append(took)
    return samples


def first_calls(benches, turns, settle):
    samples = {name: [] for name in benches}
    for turn in range(turns):
        for name in rotations(turn):
            b = benches[name]
            b.stop_gustd()
            b.start_gustd('--sandbox', MODES[name])
            time.sleep(settle)
            samples[name].append(b.timed_call(APP, 'ping')[0])
    return samples


def interval(differences, draws=4000):
    """A 95 % bootstrap interval of the median: the turns drawn again with replacement, `draws`
    times (a fixed seed, so the same samples print the same interval)."""
    generator = random.Random(12)
    medians = sorted(statistics.median(generator.choices(differences, k=len(differences))) for _ in range(draws))
    return medians[int(draws * 0.025)], medians[int(draws * 0.975) - 1]


def paired(samples, name, digits):
    """`name` − none within each turn: the median of those differences, its 95 % interval and quartiles."""
    differences = sorted(b - n for n, b in zip(samples['none'], samples[name]))
    q1, _, q3 = statistics.quantiles(differences, n=4)
    low, high = interval(differences)
    positive = sum(d > 0 for d in differences)
    return (f'{name} − none: median {statistics.median(differences):+.{digits}f} ms (95 % interval '
            f'{low:+.{digits}f} … {high:+.{digits}f}), quartiles {q1:+.{digits}f} … {q3:+.{digits}f}, '
            f'{positive} of {len(differences)} turns positive')


def report(title, samples, digits=1, p50=None):
    print(f'{title}:')
    for name, values in samples.items():
        whole = f'p50 of every call {p50[name]:.{digits}f} ms, ' if p50 else ''
        print(f'  {name:<11} {whole}median {statistics.median(values):.{digits}f} ms, '
              f'min {min(values):.{digits}f}, max {max(values):.{digits}f} ({len(values)} turns)')
    print(f"  paired: {paired(samples, 'bubblewrap', digits)}")
    print(f"  paired: {paired(samples, 'none-again', digits)}  (resolution)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='directory with gust, gust-receive and gustd (a release build)')
    parser.add_argument('--turns', type=int, default=15, help='turns of each start measurement (default 15)')
    parser.add_argument('--blocks', type=int, default=40, help=f'blocks of {BLOCK} warm calls per gustd (default 40)')
    parser.add_argument('--settle', type=float, default=1.0,
                        help="seconds between gustd's start and the settled first call (default 1)")
    parser.add_argument('--user', help='run every gustd as this user (root only; give it a subordinate uid range)')
    parser.add_argument('--parts', default=','.join(PARTS),
                        help=f"which parts to run, comma-separated (default all: {','.join(PARTS)})")
    parser.add_argument('--json', action='store_true', help='print every sample as JSON too')
    args = parser.parse_args()
    chosen = args.parts.split(',')
    if unknown := set(chosen) - set(PARTS):
        parser.error(f"no such part: {', '.join(sorted(unknown))} (parts: {', '.join(PARTS)})")

    benches = {}
    results = {'loads': []}
    try:
        for name, mode in MODES.items():
            b = bench.Bench(os.path.abspath(args.bin), args.turns, 0, args.user)
            b.cgroup_root += '-' + name
            benches[name] = b
            if args.user:
                os.makedirs(b.home)
                subprocess.run(['chown', '-R', args.user, b.dir], check=True)
                os.chmod(b.dir, 0o755)
            b.start_gustd('--sandbox', mode)
            b.push_app(APP, {'main.py': bench.STARTS_CODE, 'requirements.txt': 'six\n'})
            b.call(APP, 'ping')
        parts = [('warm', lambda: warm_calls(benches, args.blocks)),
                 ('scale_out', lambda: scale_outs(benches, args.turns)),
                 ('cold_running', lambda: cold_starts(benches, args.turns)),
                 ('first_call', lambda: first_calls(benches, args.turns, 0.0)),
                 ('first_call_settled', lambda: first_calls(benches, args.turns, args.settle))]
        for part, measure in parts:
            if part not in chosen:
                continue
            before = load()
            results[part] = measure()
            results['loads'].append((part, before, load()))
    finally:
        for b in benches.values():
            b.stop_gustd()
            b.remove_cgroups()
            shutil.rmtree(b.dir, ignore_errors=True)

    who = f'as {args.user} (app uids)' if args.user else f'as uid {os.getuid()}'
    print(f'gustd {who}, three at once: none, bubblewrap, none-again')
    if warm := results.get('warm'):
        report(f"warm call ({warm['calls_each']} calls each, per-block p50s of {BLOCK})", warm['samples'], 3, warm['p50'])
        print('  p99 of every call: ' + ', '.join(f'{name} {value:.3f} ms' for name, value in warm['p99'].items()))
    titles = {'scale_out': 'scale-out (a second instance while the first is busy)',
              'cold_running': 'cold start with gustd running (no instance, no zygote)',
              'first_call': "first call at once after gustd's start",
              'first_call_settled': f"first call {args.settle:g} s after gustd's start"}
    for part, title in titles.items():
        if part in results:
            report(title, results[part])
    print('load average (1 min) before → after: ' + '; '.join(f'{part} {a:.2f} → {b:.2f}' for part, a, b in results['loads']))
    if args.json:
        print(json.dumps(results))


if __name__ == '__main__':
    main()
