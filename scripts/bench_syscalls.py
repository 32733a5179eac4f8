#!/usr/bin/env python3
"""Where a call's kernel time goes: gustd beside nginx, per answered request (issue 11, "where the
time goes"; docs/benchmarks.md, "Event loops").

    scripts/bench_syscalls.py --bin DIR [--connections 16] [--duration 5] [--gustd-args ARGS]

The servers of bench_peers.py (gustd from --bin with the bench app pushed by the real `git push`
and 4 instances; nginx with Piku's site and one worker in front of uWSGI with 4 workers), started
in a throwaway directory (removed at the end) and stopped by PID. For each, the trivial handler is loaded
with `wrk -t2 -cN` twice: once under `perf stat` (system calls entered, context switches and CPU
time of gustd, or of nginx's worker), once under `strace -c -f` for which calls they are (strace
slows what it watches several times over, so its counts per request are what to read, not its
times). Then the same for the processes behind each: the app's under gustd (its zygote and
instances) and uWSGI's (its master and workers). Needs perf (linux-perf) and strace; run it as root.
"""
import argparse, os, re, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench_peers as peers  # noqa: E402


def load_with(pids, port, path, connections, duration, watcher):
    """Starts `watcher` on `pids`, runs wrk, stops the watcher by its PID: (requests answered, its stderr)."""
    watching = subprocess.Popen(watcher + [','.join(pids)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # attached before the load starts
        out = subprocess.run(['wrk', '-t2', f'-c{connections}', f'-d{duration}s', f'http://127.0.0.1:{port}{path}'],
                             capture_output=True, text=True, timeout=duration + 60).stdout
    finally:
        watching.send_signal(signal.SIGINT)
        try:
            err = watching.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            watching.kill()
            err = watching.communicate()[1]
    return int(re.search(r'(\d+) requests in', out).group(1)), err


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='the gustd (and gust) to measure')
    parser.add_argument('--connections', type=int, default=16, help="wrk's connections (default 16)")
    parser.add_argument('--duration', type=int, default=5, help='seconds of wrk per measurement')
    parser.add_argument('--gustd-args', default='', help="options added to gustd's command line, such as '--event-loops 1'")
    args = parser.parse_args()
    with peers.started(args.bin, args.duration, args.gustd_args) as bench:
        gustd = next(service for service in bench.services if service.name == 'gustd')
        nginx = next(service for service in bench.services if service.name == 'nginx')
        # Its master's children (its one worker), not any other nginx on the machine.
        workers = subprocess.run(['pgrep', '-P', str(nginx.process.pid)], capture_output=True, text=True).stdout.split()
        uwsgi = next(service for service in bench.services if service.name == 'uwsgi')
        for name, port, path, pids in [('gustd', bench.gust_port, '/apps/bench/hello', [str(gustd.process.pid)]),
                                       ('nginx', bench.peer_port, '/hello', workers),
                                       ("the app's processes under gustd", bench.gust_port, '/apps/bench/hello',
                                        [str(pid) for pid in peers.descendants(gustd.process.pid)]),
                                       ("uWSGI's processes", bench.peer_port, '/hello', [str(pid) for pid in peers.descendants(uwsgi.process.pid)])]:
            subprocess.run(['wrk', '-t2', f'-c{args.connections}', '-d1s', f'http://127.0.0.1:{port}{path}'], capture_output=True)
            requests, err = load_with(pids, port, path, args.connections, args.duration,
                                      ['perf', 'stat', '-x,', '-e', 'raw_syscalls:sys_enter,context-switches,task-clock', '-p'])
            counted = {fields[2]: float(fields[0]) for fields in (line.split(',') for line in err.splitlines()) if len(fields) > 2}
            print(f"{name}: {requests / args.duration:,.0f} req/s under perf; per answered request "
                  f"{counted.get('raw_syscalls:sys_enter', 0) / requests:.2f} system calls, "
                  f"{counted.get('context-switches', 0) / requests:.2f} context switches, "
                  f"{counted.get('task-clock', 0) * 1000 / requests:.1f} µs of CPU")
            requests, err = load_with(pids, port, path, args.connections, args.duration, ['strace', '-c', '-f', '-p'])
            calls = []
            for line in err.splitlines():
                match = re.match(r'\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$', line)
                if match and match.group(2) != 'total':
                    calls.append((int(match.group(1)) / requests, match.group(2)))
            print('   under strace, per request: ' + ', '.join(f'{name} {count:.2f}' for count, name in sorted(calls, reverse=True) if count >= 0.01))


if __name__ == '__main__':
    main()
