#!/usr/bin/env python3
"""gustd's own /_/health beside nginx's `return 200`, in rounds (issue 11: at least half of
nginx's requests per second, one worker each; docs/benchmarks.md, "gustd's own floor").

    scripts/bench_health.py --bin DIR [--before DIR] [--rounds 15] [--duration 3] [--cpu] [--json]

scripts/bench_peers.py measures this row once per run, and nginx alone moves by a third
between runs on a shared 2-core machine, so one run's ratio says little. Here the same
servers as there (gustd from --bin with the bench app pushed by the real `git push`, nginx
with Piku's site and one worker process, both started by bench_peers.py's code in a
throwaway directory and stopped by PID at the end) are loaded in turn, `wrk -t2 -c16` for
--duration seconds each, the order rotating every round so that each round's sides see the
same moment of the machine. Reported: each side's median req/s, and the median of the
per-round ratios gustd / nginx with a 95 % bootstrap interval.

With --before DIR, a second gustd from an older build takes its turn in every round too,
and the report adds its ratio and the per-round ratio after / before. With --cpu, `perf
stat -e task-clock` runs on each gustd during its turns and gives its CPU time per
answered request (perf slows what it watches a little; the req/s of such a run are lower).
"""
import argparse, importlib.util, json, os, re, shutil, signal, statistics, subprocess, sys, time


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(os.path.abspath(__file__)), name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peers = load('bench_peers')
interval = load('bench_sandbox').interval  # a 95 % bootstrap interval of a median


def wrk(port, path, duration, pid=None):
    """Answered req/s of one wrk run, and gustd's CPU µs per request when `pid` is watched."""
    perf = None
    if pid:
        perf = subprocess.Popen(['perf', 'stat', '-x,', '-e', 'task-clock', '-p', str(pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    try:
        out = subprocess.run(['wrk', '-t2', '-c16', f'-d{duration}s', f'http://127.0.0.1:{port}{path}'],
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
    rate = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    non2xx = re.search(r'Non-2xx or 3xx responses:\s+(\d+)', out)
    if non2xx:
        sys.exit(f'{path} on port {port} answered {non2xx.group(1)} errors:\n{out}')
    clock = [line for line in err.splitlines() if 'task-clock' in line]
    cpu = float(clock[0].split(',')[0]) * 1000 / (rate * elapsed) if clock else None
    return rate, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='the gustd (and gust) to measure')
    parser.add_argument('--before', help='an older build to measure beside it')
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--duration', type=int, default=3, help='seconds of wrk per side per round')
    parser.add_argument('--cpu', action='store_true', help="gustd's CPU per request (perf stat)")
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()

    benches = {'after': peers.PeerBench(os.path.abspath(args.bin), args.duration, 1, 10, 0)}
    if args.before:
        benches['before'] = peers.PeerBench(os.path.abspath(args.before), args.duration, 1, 10, 0)
    path = '/apps/bench/_/health'
    rates = {name: [] for name in [*benches, 'nginx']}
    cpu = {name: [] for name in benches}
    try:
        for bench in benches.values():
            bench.start_gust()
        benches['after'].start_peer()
        sides = [(name, bench.gust_port, path, bench.services[0].process.pid) for name, bench in benches.items()]
        sides.append(('nginx', benches['after'].peer_port, '/health', None))
        for _, port, side_path, _ in sides:
            wrk(port, side_path, 1)  # a warm-up each
        for turn in range(args.rounds):
            for name, port, side_path, pid in sides[turn % len(sides):] + sides[:turn % len(sides)]:
                rate, per_request = wrk(port, side_path, args.duration, pid if args.cpu else None)
                rates[name].append(rate)
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
        'machine': peers.machine(), 'rounds': args.rounds, 'duration_s': args.duration,
        'req_per_s': {name: statistics.median(values) for name, values in rates.items()},
        'ratio_to_nginx': {name: ratios(name, 'nginx') for name in benches},
        'cpu_us_per_request': {name: statistics.median(values) for name, values in cpu.items() if values},
    }
    if args.before:
        report['after_over_before'] = ratios('after', 'before')
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.rounds} rounds of wrk -t2 -c16 for {args.duration} s per side, order rotating; load average "
          f"{report['machine']['load_average']}")
    for name, rate in report['req_per_s'].items():
        print(f'  {name:<7} median {rate:,.0f} req/s' + (f", {report['cpu_us_per_request'][name]:.1f} µs of gustd's CPU per request"
                                                         if name in report['cpu_us_per_request'] else ''))
    for name, r in report['ratio_to_nginx'].items():
        print(f"  {name} / nginx per round: median {r['median']:.2f} (95 % interval {r['low']:.2f} … {r['high']:.2f}; "
              f"range {r['min']:.2f} … {r['max']:.2f}); aim at least 0.5")
    if args.before:
        r = report['after_over_before']
        print(f"  after / before per round: median {r['median']:.2f} (95 % interval {r['low']:.2f} … {r['high']:.2f})")


if __name__ == '__main__':
    main()
