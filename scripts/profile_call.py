#!/usr/bin/env python3
"""Where a call's time goes: what gustd adds to it, and instructions per call of gustd and of
the Python runtime (docs/benchmarks.md, "Per-call cost").

    scripts/profile_call.py --bin "$(swift build -c release --show-bin-path)" [--calls 5000] [--perf] [--callgrind]

Starts gustd from --bin in a throwaway GUST_HOME, pushes the trivial handler of
scripts/bench_peers.py with the real `git push` (one instance), then:
  latency    N sequential keep-alive calls of GET /hello straight to the instance's Unix
             socket and N through gustd (GET /apps/bench/hello), with the same client:
             p50 and p99 of each, and the difference of the p50s (what gustd adds).
  perf       (--perf) CPU time per call of gustd and of the instance (perf stat's task-clock
             over N calls) and gustd's hottest symbols (perf record -e cpu-clock).
  callgrind  (--callgrind) gustd again under valgrind's callgrind with collection off,
             switched on for N calls only: gustd's instructions per call, its top functions;
             and the runtime alone under callgrind, N calls on its socket minus a run of 0
             calls (its start-up): the runtime's instructions per call.
This VM has no hardware counters for `perf stat -e instructions`, hence callgrind for
instruction counts; valgrind 3.19 crashes inside gustd's libdispatch, so gustd gets CPU time
per call and a cpu-clock profile instead (the runtime gets both). Every process is
stopped by its PID; the directory is removed at the end.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peers import GUST_APP  # noqa: E402 - the same app the peer comparison serves

REQUEST = b'GET %s HTTP/1.1\r\nHost: bench.localhost\r\nAccept: */*\r\n\r\n'


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__('instance', timeout=30)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path_)


def timed(call, calls):
    """p50 and p99 in ms of `calls` runs of `call`, after 200 warm-up runs."""
    samples = []
    for n in range(calls + 200):
        started = time.perf_counter_ns()
        call()
        if n >= 200:
            samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    return {'p50_ms': samples[len(samples) // 2], 'p99_ms': samples[int(len(samples) * 0.99)]}


def http_call(connection, path, body=None, headers=None):
    """One GET of `path` (with `headers`) on a keep-alive `connection`, as a function: it exits unless
    the answer is 200 (and `body`, when given)."""
    headers = headers or {}

    def call():
        connection.request('GET', path, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200 or (body is not None and answer != body):
            sys.exit(f'{path} answered {response.status} {answer[:80]!r}')
    return call


def latency(connection, path, calls):
    return timed(http_call(connection, path), calls)


def instance_socket(home):
    """The socket of the one instance in `home`: run/instances/ID.sock, or instance.sock in its directory
    when sandboxed (run/instances/ID/, or run/instances/ZYGOTE/ID/ for an instance forked by its zygote)."""
    instances = os.path.join(home, 'run', 'instances')
    deadline = time.monotonic() + 30
    while True:
        sockets = [os.path.join(instances, name) for name in os.listdir(instances) if name.endswith('.sock')]
        sockets += [os.path.join(root, 'instance.sock') for root, _, files in os.walk(instances) if 'instance.sock' in files]
        if sockets or time.monotonic() > deadline:
            return sockets[0]
        time.sleep(0.1)


class Run:
    def __init__(self, bin_dir):
        self.bin = bin_dir
        self.dir = tempfile.mkdtemp(prefix='gust-profile.')
        self.home = os.path.join(self.dir, 'home')
        self.env = dict(os.environ, GUST_HOME=self.home, GIT_CONFIG_NOSYSTEM='1', GIT_CONFIG_GLOBAL='/dev/null',
                        GIT_AUTHOR_NAME='Bench', GIT_AUTHOR_EMAIL='bench@gust.invalid',
                        GIT_COMMITTER_NAME='Bench', GIT_COMMITTER_EMAIL='bench@gust.invalid')
        self.processes = []

    def run(self, *args, cwd=None):
        result = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            sys.exit(f'{" ".join(args)} failed:\n{result.stdout}{result.stderr}')
        return result.stdout

    def start_gustd(self, wrapper=(), gustd=None):
        shutil.rmtree(self.home, ignore_errors=True)
        os.makedirs(self.home)
        log = open(os.path.join(self.dir, 'gustd.log'), 'w')
        process = subprocess.Popen([*wrapper, gustd or os.path.join(self.bin, 'gustd'), '--home', self.home, '--http', '127.0.0.1:0'],
                                   env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        self.processes.append(process)
        address = os.path.join(self.home, 'run', 'gustd.http')
        deadline = time.monotonic() + 120
        while not (os.path.exists(address) and open(address).read().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f'gustd did not start; see {log.name}')
            time.sleep(0.05)
        self.port = int(open(address).read().strip().rsplit(':', 1)[1])
        work = os.path.join(self.dir, 'app')
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        with open(os.path.join(work, '__init__.py'), 'w') as f:
            f.write(GUST_APP)
        with open(os.path.join(work, 'requirements.txt'), 'w') as f:
            f.write('flask\n')  # the app mounts a Flask view, as bench_peers.py pushes it: from PyPI, at the push
        self.run(os.path.join(self.bin, 'gust'), 'apps', 'create', 'bench')
        self.run(os.path.join(self.bin, 'gust'), 'scale', 'bench', '--min', '1', '--max', '1')
        self.run('git', 'init', '-q', '-b', 'main', cwd=work)
        self.run('git', 'add', '-A', cwd=work)
        self.run('git', 'commit', '-q', '-m', 'bench', cwd=work)
        self.run('git', 'push', '-q', os.path.join(self.home, 'repos', 'bench.git'), 'main', cwd=work)
        return process

    def instance_socket(self):
        return instance_socket(self.home)

    def instance_id(self):
        socket_path = self.instance_socket()
        name = os.path.basename(socket_path)
        return name[:-len('.sock')] if name != 'instance.sock' else os.path.basename(os.path.dirname(socket_path))

    def stop(self, process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def cleanup(self):
        for process in self.processes:
            self.stop(process)
        shutil.rmtree(self.dir, ignore_errors=True)


def callgrind_total(out_file):
    """Total Ir of a callgrind output file, and its top functions (inclusive of nothing: self cost)."""
    annotate = subprocess.run(['callgrind_annotate', '--threshold=90', out_file], capture_output=True, text=True).stdout
    total = 0
    top = []
    for line in annotate.splitlines():
        match = re.match(r'\s*([\d,]+)\s+(\([\s\d.]+%\))?\s*PROGRAM TOTALS', line)
        if match:
            total = int(match.group(1).replace(',', ''))
        match = re.match(r'\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)', line)
        if match and 'PROGRAM TOTALS' not in line and len(top) < 15:
            top.append((int(match.group(1).replace(',', '')), match.group(3)[:110]))
    return total, top


def instance_pid(run):
    with open(os.path.join(run.home, 'run', 'instances', run.instance_id() + '.json')) as file:
        pid = json.load(file)['pid']
    # Sandboxed, the recorded process is bubblewrap's; the runtime is a descendant. Count them all.
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as stat:
                    parents[int(entry)] = int(stat.read().rsplit(')', 1)[1].split()[1])
            except OSError:
                pass
    family = [pid]
    for candidate in family:
        family += [child for child, parent in parents.items() if parent == candidate]
    return ','.join(str(member) for member in family)


def task_clock_ms(pid, work):
    """CPU time (ms, all threads) that pid (or a comma-separated list) spends while work() runs: perf stat's task-clock,
    a software counter, so it works where the VM has no hardware counters."""
    perf = subprocess.Popen(['perf', 'stat', '-x,', '-e', 'task-clock', '-p', str(pid)],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    work()
    perf.send_signal(signal.SIGINT)
    err = perf.communicate()[1]
    line = next(line for line in err.splitlines() if 'task-clock' in line)
    return float(line.split(',')[0])


def cpu_per_call(run, gustd_pid, calls):
    """Microseconds of CPU per call: gustd's and the instance's, through gustd; the instance's called directly."""
    runtime_pid = instance_pid(run)
    through = lambda: calls_on(lambda: http.client.HTTPConnection('127.0.0.1', run.port), '/apps/bench/hello', calls)  # noqa: E731
    direct = lambda: calls_on(lambda: UnixHTTPConnection(run.instance_socket()), '/hello', calls)  # noqa: E731
    return {
        'gustd_us': task_clock_ms(gustd_pid, through) * 1000 / calls,
        'runtime_us_through_gustd': task_clock_ms(runtime_pid, through) * 1000 / calls,
        'runtime_us_direct': task_clock_ms(runtime_pid, direct) * 1000 / calls,
    }


def profile(run, gustd_pid, calls):
    """gustd's hottest symbols (self time, cpu-clock samples) over `calls` sequential calls."""
    data = os.path.join(run.dir, 'perf.data')
    perf = subprocess.Popen(['perf', 'record', '-q', '-e', 'cpu-clock', '-F', '4999', '-o', data, '-p', str(gustd_pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    calls_on(lambda: http.client.HTTPConnection('127.0.0.1', run.port), '/apps/bench/hello', calls)
    perf.send_signal(signal.SIGINT)
    perf.wait(60)
    report = subprocess.run(['perf', 'report', '-i', data, '--no-children', '--sort', 'dso,symbol', '--stdio',
                             '--percent-limit', '0.7'], capture_output=True, text=True).stdout
    return [line.rstrip()[:150] for line in report.splitlines() if line.strip() and not line.startswith('#')][:30]


def calls_on(connect, path, calls):
    connection = connect()
    for _ in range(calls):
        connection.request('GET', path)
        connection.getresponse().read()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True)
    parser.add_argument('--calls', type=int, default=5000)
    parser.add_argument('--perf', action='store_true', help="CPU time per call (perf stat task-clock) and gustd's profile")
    parser.add_argument('--callgrind', action='store_true')
    parser.add_argument('--callgrind-calls', type=int, default=2000)
    args = parser.parse_args()
    run = Run(os.path.abspath(args.bin))
    report = {}
    try:
        gustd = run.start_gustd()
        direct = latency(UnixHTTPConnection(run.instance_socket()), '/hello', args.calls)
        through = latency(http.client.HTTPConnection('127.0.0.1', run.port), '/apps/bench/hello', args.calls)
        report['latency'] = {'direct': direct, 'gustd': through, 'added_p50_ms': through['p50_ms'] - direct['p50_ms']}
        print(json.dumps(report['latency']), flush=True)
        if args.perf:
            report['cpu_us_per_call'] = cpu_per_call(run, gustd.pid, args.calls)
            print(json.dumps(report['cpu_us_per_call']), flush=True)
            report['gustd_profile'] = profile(run, gustd.pid, args.calls)
            print('\n'.join(report['gustd_profile']), flush=True)
        run.stop(gustd)

        if args.callgrind:
            n = args.callgrind_calls
            out = os.path.join(run.dir, 'gustd.callgrind')
            # Valgrind 3.19 cannot read the DWARF 5 Swift writes: a copy without debug info (symbols kept).
            stripped = os.path.join(run.dir, 'gustd-stripped')
            subprocess.run(['strip', '--strip-debug', '-o', stripped, os.path.join(run.bin, 'gustd')], check=True)
            gustd = run.start_gustd(['valgrind', '--tool=callgrind', '--collect-atstart=no', f'--callgrind-out-file={out}'],
                                    gustd=stripped)
            calls_on(lambda: http.client.HTTPConnection('127.0.0.1', run.port), '/apps/bench/hello', 300)
            subprocess.run(['callgrind_control', '-i', 'on', str(gustd.pid)], capture_output=True)
            calls_on(lambda: http.client.HTTPConnection('127.0.0.1', run.port), '/apps/bench/hello', n)
            subprocess.run(['callgrind_control', '-i', 'off', str(gustd.pid)], capture_output=True)
            run.stop(gustd)
            total, top = callgrind_total(out)
            report['gustd_instructions_per_call'] = total / n
            report['gustd_top'] = [(count / n, name) for count, name in top]
            print(f'gustd: {total / n:,.0f} instructions per call', flush=True)
            for count, name in top:
                print(f'  {count / n:>10,.0f}  {name}')

            # The runtime alone, as gustd starts it: N calls minus 0 calls (start-up and shutdown).
            release = next(os.path.join(root, d) for root, dirs, _ in os.walk(os.path.join(run.home, 'releases')) for d in dirs if d.startswith('v'))
            per_run = {}
            for count in (0, n):
                sock = os.path.join(run.dir, f'runtime-{count}.sock')
                out = os.path.join(run.dir, f'runtime-{count}.callgrind')
                env = dict(run.env, GUST_SOCKET=sock, GUST_INTERNAL_TOKEN='x')
                process = subprocess.Popen(['valgrind', '--tool=callgrind', f'--callgrind-out-file={out}',
                                            os.path.join(release, '.gust', 'start')], env=env, cwd=release,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                run.processes.append(process)
                deadline = time.monotonic() + 120
                while not os.path.exists(sock) and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(1)
                calls_on(lambda: UnixHTTPConnection(sock), '/hello', count)
                process.send_signal(signal.SIGTERM)  # Python dies of SIGTERM at once; callgrind writes its file
                process.wait(120)
                per_run[count] = callgrind_total(out)
            runtime = (per_run[n][0] - per_run[0][0]) / n
            report['runtime_instructions_per_call'] = runtime
            print(f'runtime: {runtime:,.0f} instructions per call')
    finally:
        run.cleanup()
    print(json.dumps(report))


if __name__ == '__main__':
    main()
