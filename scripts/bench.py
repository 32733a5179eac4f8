#!/usr/bin/env python3
"""Gust's benchmarks, the numbers in docs/benchmarks.md.

Run with `make bench` (a release build) or `scripts/bench.py --bin DIR`. Everything
runs against a throwaway GUST_HOME and a gustd on a free loopback port, both removed
at the end; gustd is stopped by its PID whatever happens.

Measured:
  first push      `git push` wall time of a small Python app with one dependency that
                  pip fetches from PyPI (empty cache): build, pack, start, switch.
  unchanged push  the same app pushed again with only its code changed: `git push` wall
                  time, the hook's build time (from the release record), and push-to-live
                  (from `git push` starting to the new answer over HTTP).
  op latency      sequential warm calls of one op over keep-alive HTTP through gustd, the
                  same op called straight on the instance's Unix socket, and gustd's own
                  health endpoint (no instance involved) for the floor of this client.
  rollback        `gust rollback` started to the old answer coming back over HTTP.
  metrics cost    the same warm op through gustd started without and with `--metrics`,
                  alternately (gustd restarted each time), and what counting adds per call.
                  `--only metrics` runs just this (after one push).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket: how gustd itself talks to an instance."""

    def __init__(self, path):
        super().__init__('localhost')
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


APP_CODE = '''import gust
import six

@gust.op('ping')
def ping(n=0):
    return {'n': n, 'version': %r, 'six': six.__version__}
'''


class Bench:
    def __init__(self, bin_dir, rounds, calls):
        self.bin = bin_dir
        self.rounds = rounds
        self.calls = calls
        self.dir = tempfile.mkdtemp(prefix='gust-bench.')
        self.home = os.path.join(self.dir, 'home')
        self.work = os.path.join(self.dir, 'app')
        self.env = dict(os.environ, GUST_HOME=self.home, GIT_CONFIG_NOSYSTEM='1', GIT_CONFIG_GLOBAL='/dev/null',
                        GIT_AUTHOR_NAME='Bench', GIT_AUTHOR_EMAIL='bench@gust.invalid',
                        GIT_COMMITTER_NAME='Bench', GIT_COMMITTER_EMAIL='bench@gust.invalid')
        # "From PyPI": no local wheel directory may stand in for the index.
        self.env.pop('PIP_FIND_LINKS', None)
        self.env['PIP_NO_CACHE_DIR'] = '1'  # nor pip's own download cache
        self.gustd = None
        self.port = None

    # Processes

    def run(self, *args, cwd=None):
        result = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f'{" ".join(args)} failed:\n{result.stdout}{result.stderr}')
        return result.stdout

    def gust(self, *args):
        return self.run(os.path.join(self.bin, 'gust'), *args)

    def start_gustd(self, *options):
        os.makedirs(self.home, exist_ok=True)
        log = open(os.path.join(self.dir, 'gustd.log'), 'a')
        address_file = os.path.join(self.home, 'run', 'gustd.http')
        if os.path.exists(address_file):
            os.remove(address_file)
        self.gustd = subprocess.Popen([os.path.join(self.bin, 'gustd'), '--home', self.home, '--http', '127.0.0.1:0', *options],
                                      env=self.env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(address_file) and open(address_file).read().strip():
                self.port = int(open(address_file).read().strip().rsplit(':', 1)[1])
                return
            if self.gustd.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit('gustd did not start; see ' + log.name)

    def stop_gustd(self):
        if self.gustd and self.gustd.poll() is None:
            self.gustd.send_signal(signal.SIGTERM)
            try:
                self.gustd.wait(10)
            except subprocess.TimeoutExpired:
                self.gustd.kill()
                self.gustd.wait()

    # The app

    def commit(self, version, requirements='six\n'):
        with open(os.path.join(self.work, '__init__.py'), 'w') as f:
            f.write(APP_CODE % version)
        with open(os.path.join(self.work, 'requirements.txt'), 'w') as f:
            f.write(requirements)
        self.run('git', 'add', '-A', cwd=self.work)
        self.run('git', 'commit', '-q', '-m', version, cwd=self.work)

    def push(self):
        started = time.perf_counter()
        self.run('git', 'push', '-q', os.path.join(self.home, 'repos', 'bench.git'), 'main', cwd=self.work)
        return time.perf_counter() - started

    def latest_build_seconds(self):
        return json.loads(self.gust('releases', 'bench', '--json'))[0]['buildSeconds']

    def answer_version(self, connection):
        connection.request('POST', '/apps/bench/_/functions/ping', body=b'{}')
        response = connection.getresponse()
        body = response.read()
        return json.loads(body)['version'] if response.status == 200 else None

    def wait_for_version(self, version, started):
        connection = http.client.HTTPConnection('127.0.0.1', self.port)
        for _ in range(10000):
            if self.answer_version(connection) == version:
                return time.perf_counter() - started
        sys.exit(f'{version} never answered')

    # Benchmarks

    def first_push(self):
        os.makedirs(self.work)
        self.run('git', 'init', '-q', '-b', 'main', cwd=self.work)
        self.gust('apps', 'create', 'bench')
        self.commit('v1')
        return self.push()

    def pushes(self):
        first = self.first_push()
        first_build = self.latest_build_seconds()
        walls, builds, to_live = [], [], []
        for round in range(self.rounds):
            version = f'unchanged-{round}'
            self.commit(version)
            started = time.perf_counter()
            walls.append(self.push())
            to_live.append(self.wait_for_version(version, started))
            builds.append(self.latest_build_seconds())
        return {'first_push_s': first, 'first_build_s': first_build,
                'unchanged_push_s': statistics.median(walls), 'unchanged_build_s': statistics.median(builds),
                'push_to_live_s': statistics.median(to_live), 'rounds': self.rounds}

    def latency(self, connect, path, method='POST', headers=None):
        connection = connect()
        samples = []
        for n in range(self.calls + 200):
            body = json.dumps({'n': n}).encode()
            started = time.perf_counter_ns()
            connection.request(method, path, body=body, headers={'Content-Type': 'application/json', **(headers or {})})
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter_ns() - started
            if response.status != 200:
                sys.exit(f'{path} answered {response.status}')
            if n >= 200:  # the first calls warm both sides up
                samples.append(elapsed / 1e6)
        samples.sort()
        return {'p50_ms': samples[len(samples) // 2], 'p99_ms': samples[int(len(samples) * 0.99)]}

    def op_latency(self):
        instances = os.path.join(self.home, 'run', 'instances')
        sockets = [name for name in os.listdir(instances) if name.endswith('.sock')]
        if len(sockets) != 1:
            sys.exit(f'expected one running instance, found {sockets}')
        socket_path = os.path.join(instances, sockets[0])
        # The instance's internal surface answers only with its secret; a process of gustd's user
        # can read it from the instance's initial environment (until instances run as users of their own).
        with open(os.path.join(instances, sockets[0][:-len('.sock')] + '.json')) as file:
            pid = json.load(file)['pid']
        with open(f'/proc/{pid}/environ', 'rb') as file:
            variables = dict(item.split(b'=', 1) for item in file.read().split(b'\0') if b'=' in item)
        secret = {'X-Gust-Internal': variables[b'GUST_INTERNAL_TOKEN'].decode()}
        direct = self.latency(lambda: UnixHTTPConnection(socket_path), '/_gust/ops/ping', headers=secret)
        through = self.latency(lambda: http.client.HTTPConnection('127.0.0.1', self.port), '/apps/bench/_/functions/ping')
        # gustd answering by itself (its health endpoint, no instance): HTTP, routing, and this client's own cost.
        alone = self.latency(lambda: http.client.HTTPConnection('127.0.0.1', self.port), '/apps/bench/_/health', 'GET')
        return {'direct': direct, 'gustd': through, 'gustd_alone': alone, 'calls': self.calls,
                'added_p50_ms': through['p50_ms'] - direct['p50_ms']}

    def rollbacks(self):
        """Alternates between the live release and the one before it, both built here."""
        releases = json.loads(self.gust('releases', 'bench', '--json'))
        live = next(r for r in releases if r['status'] == 'live')
        previous = next(r for r in releases if r['version'] < live['version'] and r['status'] != 'failed')
        targets = [previous['version'], live['version']]
        times = []
        for round in range(self.rounds):
            target = targets[round % 2]
            started = time.perf_counter()
            self.gust('rollback', 'bench', f'v{target}')
            times.append(self.wait_for_version(self.answer_of(target), started))
        return {'rollback_s': statistics.median(times), 'rounds': self.rounds}

    def metrics_cost(self, rounds=3):
        """The warm op through gustd without and with --metrics, alternately, gustd restarted each time."""
        p50 = {False: [], True: []}
        p99 = {False: [], True: []}
        for _ in range(rounds):
            for metrics in (False, True):
                self.stop_gustd()
                self.start_gustd(*(['--metrics', '127.0.0.1:0'] if metrics else []))
                self.wait_for_answer()
                measured = self.latency(lambda: http.client.HTTPConnection('127.0.0.1', self.port), '/apps/bench/_/functions/ping')
                p50[metrics].append(measured['p50_ms'])
                p99[metrics].append(measured['p99_ms'])
        without, with_metrics = statistics.median(p50[False]), statistics.median(p50[True])
        return {'without_p50_ms': without, 'with_p50_ms': with_metrics,
                'without_p99_ms': statistics.median(p99[False]), 'with_p99_ms': statistics.median(p99[True]),
                'added_p50_us': (with_metrics - without) * 1000, 'rounds': rounds, 'calls': self.calls}

    def wait_for_answer(self):
        """A connection once the live release answers (after a restart it starts again)."""
        for _ in range(600):
            connection = http.client.HTTPConnection('127.0.0.1', self.port)
            try:
                if self.answer_version(connection) is not None:
                    return connection
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.05)
        sys.exit('the app did not answer after gustd restarted')

    def answer_of(self, release):
        """The version a release answers with: its commit message, found through its tag."""
        repository = os.path.join(self.home, 'repos', 'bench.git')
        return self.run('git', '--git-dir', repository, 'log', '-1', '--format=%s', f'v{release}').strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='directory with gust, gust-receive and gustd (a release build)')
    parser.add_argument('--rounds', type=int, default=5, help='pushes and rollbacks to take the median of')
    parser.add_argument('--calls', type=int, default=5000, help='op calls per latency measurement')
    parser.add_argument('--json', action='store_true', help='print the results as JSON')
    parser.add_argument('--only', choices=['metrics'], help='run only this benchmark (after one push)')
    args = parser.parse_args()

    bench = Bench(os.path.abspath(args.bin), args.rounds, args.calls)
    try:
        bench.start_gustd()
        if args.only == 'metrics':
            bench.first_push()
            results = {'metrics': bench.metrics_cost()}
        else:
            results = {'pushes': bench.pushes(), 'op_latency': bench.op_latency(), 'rollback': bench.rollbacks(),
                       'metrics': bench.metrics_cost()}
    finally:
        bench.stop_gustd()
        shutil.rmtree(bench.dir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    m = results['metrics']
    metrics_line = (f"metrics, warm op p50 without / with   {m['without_p50_ms']:.3f} / {m['with_p50_ms']:.3f} ms "
                    f"(p99 {m['without_p99_ms']:.3f} / {m['with_p99_ms']:.3f}): {m['added_p50_us']:+.1f} µs per call, "
                    f"median of {m['rounds']} restarts each, {m['calls']} calls each")
    if args.only:
        print(metrics_line)
        return
    p, o, r = results['pushes'], results['op_latency'], results['rollback']
    print(f"first push, one dependency from PyPI   {p['first_push_s']:.2f} s wall ({p['first_build_s']:.2f} s build)")
    print(f"unchanged dependencies, git push       {p['unchanged_push_s']:.2f} s wall ({p['unchanged_build_s']:.2f} s build), median of {p['rounds']}")
    print(f"push to live (push start → new answer) {p['push_to_live_s']:.2f} s, median of {p['rounds']}")
    print(f"warm op, instance socket directly      p50 {o['direct']['p50_ms']:.3f} ms  p99 {o['direct']['p99_ms']:.3f} ms")
    print(f"warm op, through gustd (HTTP)          p50 {o['gustd']['p50_ms']:.3f} ms  p99 {o['gustd']['p99_ms']:.3f} ms")
    print(f"gustd's own health endpoint (no call)  p50 {o['gustd_alone']['p50_ms']:.3f} ms  p99 {o['gustd_alone']['p99_ms']:.3f} ms")
    print(f"gustd adds at p50                      {o['added_p50_ms']:.3f} ms, {o['calls']} calls each")
    print(f"rollback (command → old answer)        {r['rollback_s']:.2f} s, median of {r['rounds']}")
    print(metrics_line)


if __name__ == '__main__':
    main()
