#!/usr/bin/env python3
"""What an app's starts and stops cost another app's calls, on two builds of Gust side by side
(docs/benchmarks.md, "Launches off the event loops"): two gustds at once (each its own home and
cgroup root), each with two apps. A probe calls `probe`'s `ping` back to back on one keep-alive
connection for two windows per round: a quiet one, and one in which four 0.3 s calls to
`starts` (`--min 1 --max 4 --idle 1s`) make its pool start three instances (forks of its
zygote) and stop them again once idle. The rounds take turns between the builds.

    scripts/bench_stalls_ab.py ROUNDS BEFORE_BIN_DIR AFTER_BIN_DIR

Each BIN_DIR holds gust, gust-receive and gustd, with buildpacks/ beside it or above it.
Printed per build and window: the probe's calls, their p50, p99, p99.9 and slowest, and how
many took over 1 and 2 ms.
"""
import http.client, os, statistics, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench  # noqa: E402

if len(sys.argv) != 4:
    sys.exit(__doc__)
rounds = int(sys.argv[1])
B = bench.side_by_side({'before': sys.argv[2], 'after': sys.argv[3]}, rounds)
latencies = {k: {'quiet': [], 'starts': []} for k in B}


def probe(b, out, stop):
    """`ping` of the probe app, one call after another, until `stop`: milliseconds each."""
    connection = http.client.HTTPConnection('127.0.0.1', b.port, timeout=30)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            connection.request('POST', '/apps/probe/_/functions/ping', body=b'{}')
            connection.getresponse().read()
            out.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()


def window(b, kind):
    stop, out = threading.Event(), []
    prober = threading.Thread(target=probe, args=(b, out, stop))
    prober.start()
    try:
        time.sleep(0.2)
        if kind == 'starts':
            calls = [threading.Thread(target=b.call, args=('starts', 'slow', b'{"seconds": 0.3}')) for _ in range(4)]
            for call in calls:
                call.start()
            for call in calls:
                call.join()
            time.sleep(1.6)  # the three extra instances stop once idle (1 s)
        else:
            time.sleep(1.9)
    finally:
        stop.set()
        prober.join()
    return out


try:
    for b in B.values():
        b.start_gustd('--sandbox', 'none')
        for app in ('probe', 'starts'):
            b.push_app(app, {'main.py': bench.STARTS_CODE, 'requirements.txt': 'six\n'})
        b.gust('scale', 'starts', '--min', '1', '--max', '4', '--idle', '1s')
        b.call('starts', 'ping')
        b.call('probe', 'ping')
    order = list(B)
    for r in range(rounds):
        for k in (order if r % 2 == 0 else order[::-1]):
            b = B[k]
            b.wait_until(lambda: len(b.ps('starts')) == 1, 30, 'one instance of starts')
            for kind in ('quiet', 'starts'):
                latencies[k][kind].extend(window(b, kind))
finally:
    bench.stop_side_by_side(B)


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


for k in B:
    for kind, v in latencies[k].items():
        print(f'{k:6} {kind:6} calls {len(v):7}  p50 {statistics.median(v):.3f}  p99 {quantile(v, .99):.3f}  '
              f'p99.9 {quantile(v, .999):.3f}  max {max(v):.2f} ms  over 1 ms {sum(x > 1 for x in v)}  over 2 ms {sum(x > 2 for x in v)}')
