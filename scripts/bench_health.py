#!/usr/bin/env python3
"""gustd's own /_/health beside nginx's `return 200`, in rounds (issue 11: at least half of
nginx's requests per second, one worker each; docs/benchmarks.md, "gustd's own floor").
With --row trivial, the trivial handler through gustd beside nginx + uWSGI serving the same
function (issue 11: at least the peer's requests per second; docs/benchmarks.md, "Calls that
wait take the lane").

    scripts/bench_health.py --bin DIR [--before DIR [--before-share DIR]] [--row health|trivial]
                            [--connections 16] [--rounds 15] [--duration 3] [--cpu] [--json]
                            [--gustd-args ARGS] [--before-gustd-args ARGS]

scripts/bench_peers.py measures this row once per run, and nginx alone moves by a third
between runs on a shared 2-core machine, so one run's ratio says little. Here the same
servers as there (gustd from --bin with the bench app pushed by the real `git push`, nginx
with Piku's site and one worker process, both started by bench_peers.py's code in a
throwaway directory and stopped by PID at the end) are loaded in turn, `wrk -t2 -cN` for
--duration seconds each, the order rotating every round so that each round's sides see the
same moment of the machine. Reported: each side's median req/s, and the median of the
per-round ratios gustd / peer with a 95 % bootstrap interval. For --row trivial, gustd's
app runs 4 instances and uWSGI 4 workers, as in bench_peers.py's serving rows.

With --before DIR, a second gustd from an older build takes its turn in every round too,
and the report adds its ratio and the per-round ratio after / before. The two slots are not
quite alike (the before gustd has its own cgroup root, and the turns interleave with it), so
run the same build as both --bin and --before once (an A/A run) to see the bench's own spread:
on the 2-core VM of docs/benchmarks.md that gave 0.95-1.01 at 64 connections. With --cpu, `perf
stat -e task-clock` runs on each gustd during its turns and gives its CPU time per
answered request (perf slows what it watches a little; the req/s of such a run are lower).
With --before-share DIR, the before gustd (and its pushes) take the runtimes and buildpacks
from DIR (GUST_SHARE: a directory with an older checkout's buildpacks/ and hooks/, made with
`git archive REV | tar -x -C DIR`): give the same build as --bin and --before to measure a
change of a runtime alone. --gustd-args and --before-gustd-args add options to either gustd's
command line (one string, split as a shell would): the same build as both sides with
`--gustd-args '--event-loops 1'` measures that option (docs/operations.md, "Event loops").
"""
import argparse, json, os, re, shlex, shutil, signal, statistics, subprocess, sys, time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench_peers as peers  # noqa: E402
from bench_sandbox import interval  # noqa: E402  # a 95 % bootstrap interval of a median


def wrk(port, path, duration, pid=None, connections=16):
    """Answered req/s of one wrk run, and gustd's CPU µs per request when `pid` is watched."""
    perf = None
    if pid:
        perf = subprocess.Popen(['perf', 'stat', '-x,', '-e', 'task-clock', '-p', str(pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    try:
        out = subprocess.run(['wrk', '-t2', f'-c{connections}', f'-d{duration}s', f'http://127.0.0.1:{port}{path}'],
                             capture_output=True, text=True, timeout=duration + 60).stdout
    finally:
        elapsed = time.monotonic() - started
        err = ''
        if perf:  # stopped by its PID whatever happened to wrk
            perf.send_signal(signal.SIGINT)
            try:
                err = perf.communicate(timeout=30)[1]
            except subprocess.TimeoutExpired:
                perf.kill()
                perf.wait()
    # Answers that are not errors, per second (nginx answers 502 when uWSGI's backlog of 16 is
    # full, as bench_peers.py counts them): wrk's own count and time.
    done = re.search(r'(\d+) requests in ([\d.]+)(m?s)', out)
    non2xx = int((re.search(r'Non-2xx or 3xx responses:\s+(\d+)', out) or [0, 0])[1])
    seconds = float(done.group(2)) / (1000 if done.group(3) == 'ms' else 1)
    rate = (int(done.group(1)) - non2xx) / seconds
    clock = [line for line in err.splitlines() if 'task-clock' in line]
    cpu = float(clock[0].split(',')[0]) * 1000 / (rate * elapsed) if clock and rate else None
    return rate, cpu, non2xx


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='the gustd (and gust) to measure')
    parser.add_argument('--before', help='an older build to measure beside it')
    parser.add_argument('--gustd-args', default='', help="options added to the measured gustd's command line")
    parser.add_argument('--before-gustd-args', default='', help="options added to the before gustd's command line")
    parser.add_argument('--before-share', help="GUST_SHARE of the before gustd: an older checkout's buildpacks/ and hooks/")
    parser.add_argument('--row', choices=['health', 'trivial'], default='health',
                        help="health: gustd's /_/health vs nginx's return 200; trivial: the trivial handler vs nginx + uWSGI")
    parser.add_argument('--connections', type=int, default=16, help="wrk's connections (default 16)")
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--duration', type=int, default=3, help='seconds of wrk per side per round')
    parser.add_argument('--cpu', action='store_true', help="gustd's CPU per request (perf stat)")
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()

    benches = {'after': peers.PeerBench(os.path.abspath(args.bin), args.duration, 1, 10, 0,
                                        gustd_args=shlex.split(args.gustd_args))}
    if args.before:
        # A cgroup tree of its own: two gustds on one machine must not share one (docs/operations.md).
        benches['before'] = peers.PeerBench(os.path.abspath(args.before), args.duration, 1, 10, 0,
                                            gustd_args=['--cgroup-root', 'gust-before'] + shlex.split(args.before_gustd_args))
        if args.before_share:
            benches['before'].env['GUST_SHARE'] = os.path.abspath(args.before_share)
    elif args.before_share or args.before_gustd_args:
        parser.error('--before-share and --before-gustd-args need --before')
    path, peer_path, peer, aim = {
        'health': ('/apps/bench/_/health', '/health', 'nginx', 0.5),
        'trivial': ('/apps/bench/hello', '/hello', 'uwsgi', 1.0),
    }[args.row]
    rates = {name: [] for name in [*benches, peer]}
    cpu = {name: [] for name in benches}
    errors = {name: 0 for name in rates}
    try:
        for bench in benches.values():
            bench.start_gust()
        benches['after'].start_peer()
        sides = [(name, bench.gust_port, path, bench.services[0].process.pid) for name, bench in benches.items()]
        sides.append((peer, benches['after'].peer_port, peer_path, None))
        for _, port, side_path, _ in sides:
            wrk(port, side_path, 1, connections=args.connections)  # a warm-up each
        for turn in range(args.rounds):
            for name, port, side_path, pid in sides[turn % len(sides):] + sides[:turn % len(sides)]:
                rate, per_request, failed = wrk(port, side_path, args.duration, pid if args.cpu else None, args.connections)
                rates[name].append(rate)
                errors[name] += failed
                if per_request is not None:
                    cpu[name].append(per_request)
            print(f'round {turn + 1}: ' + ', '.join(f'{n} {r[-1]:,.0f}' for n, r in rates.items()), file=sys.stderr)
    finally:
        for bench in benches.values():
            bench.stop_all()
            shutil.rmtree(bench.dir, ignore_errors=True)

    def ratios(top, bottom):
        values = sorted(a / b for a, b in zip(rates[top], rates[bottom]))
        low, high = interval(values)
        return {'median': statistics.median(values), 'low': low, 'high': high, 'min': values[0], 'max': values[-1]}

    report = {
        'machine': peers.machine(), 'row': args.row, 'connections': args.connections, 'rounds': args.rounds,
        'duration_s': args.duration,
        'req_per_s': {name: statistics.median(values) for name, values in rates.items()},
        'non_2xx': errors,
        'ratio_to_peer': {name: ratios(name, peer) for name in benches},
        'cpu_us_per_request': {name: statistics.median(values) for name, values in cpu.items() if values},
    }
    if args.before:
        report['after_over_before'] = ratios('after', 'before')
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.row}: {args.rounds} rounds of wrk -t2 -c{args.connections} for {args.duration} s per side, order rotating; load average "
          f"{report['machine']['load_average']}")
    for name, rate in report['req_per_s'].items():
        print(f'  {name:<7} median {rate:,.0f} req/s of 2xx answers ({errors[name]} others)' + (f", {report['cpu_us_per_request'][name]:.1f} µs of gustd's CPU per request"
                                                         if name in report['cpu_us_per_request'] else ''))
    for name, r in report['ratio_to_peer'].items():
        print(f"  {name} / {peer} per round: median {r['median']:.2f} (95 % interval {r['low']:.2f} … {r['high']:.2f}; "
              f"range {r['min']:.2f} … {r['max']:.2f}); aim at least {aim}")
    if args.before:
        r = report['after_over_before']
        print(f"  after / before per round: median {r['median']:.2f} (95 % interval {r['low']:.2f} … {r['high']:.2f})")


if __name__ == '__main__':
    main()
