#!/usr/bin/env python3
"""Where the machine's CPU goes per answered request, user and kernel apart: gustd beside its peer,
each with the client that loads it (issue 11, "where the time goes"; docs/benchmarks.md, "The
request head read with less").

    scripts/bench_cpu_split.py --bin DIR [--row health|trivial] [--connections 16] [--duration 5]
                               [--rounds 3] [--gustd-args ARGS]

The servers of bench_peers.py (gustd from --bin with the bench app pushed by the real `git push`
and 4 instances; nginx with Piku's site and one worker in front of uWSGI with 4 workers), started
in a throwaway directory (removed at the end) and stopped by PID. --row health loads gustd's
/_/health of the app and nginx's `return 200`; --row trivial the trivial handler through gustd
and through nginx + uWSGI. Each side in turn, --rounds times, `wrk -t2 -cN` for --duration
seconds; around each load, the user and system time of the server's processes (gustd and the
app's processes under it; nginx's and uWSGI's) from /proc/PID/stat, of wrk from its rusage, and
the machine's idle time from /proc/stat. Reported per answered request, in microseconds, with
the idle share: what the server costs the machine, what the client costs, and what is left; the
server's time also by part (gustd and the app's instances; nginx and uWSGI).
Nothing here slows what it watches (no perf, no strace).
"""
import argparse, os, re, resource, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench_peers as peers  # noqa: E402

TICKS = os.sysconf('SC_CLK_TCK')


def process_times(pids):
    """Seconds of user and system time the processes `pids` have used so far (gone ones count 0)."""
    user = system = 0.0
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / TICKS
        system += int(fields[12]) / TICKS
    return user, system


def idle_seconds():
    """The machine's idle and iowait time so far, summed over its CPUs, in seconds."""
    with open('/proc/stat') as f:
        fields = f.readline().split()[1:]
    return (int(fields[3]) + int(fields[4])) / TICKS


def measure(parts, port, path, connections, duration):
    """One load: per answered request, µs of the server's user and system time (in all and for each
    of its `parts`, named lists of pids) and of wrk's, and the idle share."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = {name: process_times(pids) for name, pids in parts.items()}
    idle, started = idle_seconds(), time.monotonic()
    out = subprocess.run(['wrk', '-t2', f'-c{connections}', f'-d{duration}s', f'http://127.0.0.1:{port}{path}'],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    wall, idle = time.monotonic() - started, idle_seconds() - idle
    after = {name: process_times(pids) for name, pids in parts.items()}
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = int(re.search(r'(\d+) requests in', out).group(1))
    if re.search(r'Non-2xx or 3xx responses: (\d+)', out):
        sys.exit(f'wrk saw answers other than 2xx or 3xx on {path}:\n{out}')

    def per_request(seconds):
        return seconds * 1e6 / requests

    result = {
        'requests_per_s': requests / wall,
        'server_user_us': per_request(sum(after[name][0] - before[name][0] for name in parts)),
        'server_system_us': per_request(sum(after[name][1] - before[name][1] for name in parts)),
        'client_user_us': per_request(children_after.ru_utime - children.ru_utime),
        'client_system_us': per_request(children_after.ru_stime - children.ru_stime),
        'idle_share': idle / (wall * os.cpu_count()),
    }
    for name in parts:
        result[f'{name} user_us'] = per_request(after[name][0] - before[name][0])
        result[f'{name} system_us'] = per_request(after[name][1] - before[name][1])
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='the gustd (and gust) to measure')
    parser.add_argument('--row', choices=['health', 'trivial'], default='health')
    parser.add_argument('--connections', type=int, default=16, help="wrk's connections (default 16)")
    parser.add_argument('--duration', type=int, default=5, help='seconds of wrk per load')
    parser.add_argument('--rounds', type=int, default=3, help='loads of each side, alternating (default 3)')
    parser.add_argument('--gustd-args', default='', help="options added to gustd's command line, such as '--event-loops 1'")
    args = parser.parse_args()
    with peers.started(args.bin, args.duration, args.gustd_args) as bench:
        service = {s.name: s.process.pid for s in bench.services}
        # Each side's processes, in parts: the front, and what runs the function behind it.
        gust_parts = lambda: {'gustd': [service['gustd']], 'instances': peers.descendants(service['gustd'])}
        nginx = lambda: [service['nginx']] + peers.descendants(service['nginx'])
        if args.row == 'health':
            # nginx answers `return 200` itself: its master and its worker.
            sides = [('gustd', bench.gust_port, '/apps/bench/_/health', gust_parts),
                     ('nginx', bench.peer_port, '/health', lambda: {'nginx': nginx()})]
        else:
            sides = [('gustd', bench.gust_port, '/apps/bench/hello', gust_parts),
                     ('nginx + uWSGI', bench.peer_port, '/hello',
                      lambda: {'nginx': nginx(), 'uWSGI': [service['uwsgi']] + peers.descendants(service['uwsgi'])})]
        for _, port, path, _ in sides:  # warm both
            subprocess.run(['wrk', '-t2', f'-c{args.connections}', '-d1s', f'http://127.0.0.1:{port}{path}'], capture_output=True)
        results = {name: [] for name, *_ in sides}
        for round_ in range(args.rounds):
            for name, port, path, pids in (sides if round_ % 2 == 0 else sides[::-1]):
                results[name].append(measure(pids(), port, path, args.connections, args.duration))
        print(f'{args.row}: {args.rounds} rounds of wrk -t2 -c{args.connections} for {args.duration} s per side; '
              f'medians per answered request, µs of CPU ({os.cpu_count()} CPUs)')
        print(f'  {"":14} {"req/s":>8} {"server user":>12} {"server kernel":>14} {"wrk user":>9} {"wrk kernel":>11} {"idle":>6}')
        for name, runs in results.items():
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            print(f'  {name:14} {median["requests_per_s"]:8,.0f} {median["server_user_us"]:12.1f} {median["server_system_us"]:14.1f} '
                  f'{median["client_user_us"]:9.1f} {median["client_system_us"]:11.1f} {median["idle_share"]:6.0%}')
            parts = [key[:-len(' user_us')] for key in median if key.endswith(' user_us')]
            if len(parts) > 1:
                for part in parts:
                    print(f'    {"of it " + part:12} {"":8} {median[part + " user_us"]:12.1f} {median[part + " system_us"]:14.1f}')


if __name__ == '__main__':
    main()
