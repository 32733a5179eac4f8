#!/usr/bin/env python3
"""Start latencies of two builds of Gust side by side, interleaved (docs/benchmarks.md,
"Faster starts", "Where a cold start goes"): two gustds at once (each its own home and cgroup root), the same app
pushed to both, and every sample taken from one then the other (the order alternating),
so that both see the same load on a busy machine. What is timed is what `bench.py --only
starts` times: a scale-out (a second instance while the first is busy), a call from zero
instances with the zygote resident, and a cold start (no zygote) with the release's own
interpreter running `-c 'import main'` right after it.

    scripts/bench_starts_ab.py ROUNDS BEFORE_BIN_DIR AFTER_BIN_DIR [out,zero,cold] [--json]

Each BIN_DIR holds gust, gust-receive and gustd, with buildpacks/ beside it or above it
(as Installation finds them), so a copy of an older build brings its own runtime.
"""
import os, statistics, subprocess, sys, time, threading, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench  # noqa: E402
from bench_sandbox import interval  # noqa: E402  # a 95 % bootstrap interval of a median

arguments = [a for a in sys.argv[1:] if a != '--json']
if len(arguments) < 3:
    sys.exit(__doc__)
rounds = int(arguments[0]); bins = {'before': arguments[1], 'after': arguments[2]}
what = arguments[3].split(',') if len(arguments) > 3 else ['out', 'zero', 'cold']
app = 'starts'
B = bench.side_by_side(bins, rounds)
res = {k: {} for k in B}
loads = []
try:
    for b in B.values():
        b.start_gustd('--sandbox', 'none')
        b.push_app(app, {'main.py': bench.STARTS_CODE, 'requirements.txt': 'six\n'})
    order = list(B)
    if 'out' in what:
        for b in B.values():
            b.gust('scale', app, '--min', '1', '--max', '2', '--idle', '1s'); b.call(app, 'ping')
        for r in range(rounds + 1):
            for k in (order if r % 2 == 0 else order[::-1]):
                b = B[k]
                b.wait_until(lambda: len(b.ps(app)) == 1, 30, 'one')
                busy = threading.Thread(target=b.call, args=(app, 'slow', b'{"seconds": 0.6}')); busy.start()
                b.wait_until(lambda: any(i['state'] == 'busy' for i in b.ps(app)), 10, 'busy')
                t = b.timed_call(app, 'ping')[0]; busy.join()
                if r: res[k].setdefault('out', []).append(t)
        loads.append(open('/proc/loadavg').read().split()[0])
    for b in B.values():
        b.gust('scale', app, '--min', '0', '--max', '2', '--idle', '1s')
    if 'zero' in what:
        for r in range(rounds + 1):
            for k in (order if r % 2 == 0 else order[::-1]):
                b = B[k]
                b.wait_until(lambda: not b.ps(app), 30, 'zero')
                t = b.timed_call(app, 'ping')[0]
                if r: res[k].setdefault('zero', []).append(t)
        loads.append(open('/proc/loadavg').read().split()[0])
    if 'cold' in what:
        for r in range(rounds):
            zs = {k: b.call(app, 'ping')['parent'] for k, b in B.items()}
            for k, b in B.items():
                b.wait_until(lambda: not b.ps(app), 30, 'zero')
                b.wait_until(lambda: not b.alive(zs[k]), 30, 'zygote gone')
            for k in (order if r % 2 == 0 else order[::-1]):
                b = B[k]
                res[k].setdefault('cold', []).append(b.timed_call(app, 'ping')[0])
                release = os.path.join(b.home, 'releases', app, 'v1')
                env = dict(b.env, PYTHONPATH=os.path.join(release, '.gust', 'runtime'))
                t = time.perf_counter()
                subprocess.run([os.path.join(release, '.venv', 'bin', 'python'), '-c', 'import main'], cwd=release, env=env, check=True)
                res[k].setdefault('import', []).append((time.perf_counter() - t) * 1000)
        loads.append(open('/proc/loadavg').read().split()[0])
finally:
    bench.stop_side_by_side(B)
for k in B:
    for m, v in res[k].items():
        print(f'{k:6} {m:6} p50 {statistics.median(v):7.1f} ms  min {min(v):7.1f}  all ' + ' '.join(f'{x:.1f}' for x in v))
    if 'cold' in res[k]:
        print(f'{k:6} cold/import ratio of p50s {statistics.median(res[k]["cold"]) / statistics.median(res[k]["import"]):.2f}')
        # Each cold start over the import timed right after it: the machine's drift falls on both.
        ratios = [c / i for c, i in zip(res[k]['cold'], res[k]['import'])]
        low, high = interval(ratios)
        print(f'{k:6} cold/import per round: median {statistics.median(ratios):.2f} (95 % interval {low:.2f} … {high:.2f})')
for m in res['before']:
    if m in res['after'] and m != 'import':
        differences = [a - b for b, a in zip(res['before'][m], res['after'][m])]
        low, high = interval(differences)
        print(f'after − before {m:6} per round: median {statistics.median(differences):+.1f} ms (95 % interval {low:+.1f} … {high:+.1f})')
print('load (1 min) after each part', ' '.join(loads))
if '--json' in sys.argv:
    print(json.dumps(res))
