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
  sandbox         gustd restarted with `--sandbox none` and with `--sandbox bubblewrap`, the app
                  scaled to zero, the two modes taking turns (gustd restarted each turn): the
                  first call after each start (a cold start: spawn, runtime import, manifest,
                  the call) and the p50 of calls/rounds warm calls, then, once the app stopped
                  after idle (1 s; its zygote 4 s), a cold start with gustd running (what gustd
                  keeps per app, a prepared sandbox, kept), medians of the turns; and a
                  scale-out (a second instance while the first is busy; forked from the zygote
                  without the sandbox), in the same run.
                  With --user NAME gustd runs as that user (with a subordinate range: each app
                  its own uid, newuidmap at every start); else as this one. `--only sandbox`
                  (or --sandbox-only) runs just this (after one push).
  metrics cost    the same warm op through gustd started without and with `--metrics`,
                  alternately (gustd restarted each time), and what counting adds per call.
                  `--only metrics` runs just this (after one push); `--only console` the same
                  with and without the web console (`--console`).
  starts          Python instances forked from their release's zygote (docs/benchmarks.md,
                  "Starting instances"): scale-out while the one instance is busy, a call
                  from zero instances with the zygote resident, a cold start from nothing
                  against the release's own interpreter importing the app, the PSS of each
                  extra idle instance, and gustd's RSS with 50 idle apps scaled to zero.
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
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cgroup_mounts import favordynmods  # noqa: E402  (the host's cgroup v2 mount, as gustd reads it)


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

@gust.handler('ping', methods=['POST'])
def ping_handler(request):
    return ping(**request.json())
'''

# The app of the start benchmarks: main.py, so that its interpreter can `import main` alone.
STARTS_CODE = '''import os
import time

import gust
import six

@gust.op('slow')
def slow(seconds=1.0):
    time.sleep(seconds)
    return {'pid': os.getpid()}

@gust.op('ping')
def ping():
    return {'pid': os.getpid(), 'parent': os.getppid()}
'''


def side_by_side(bins, rounds):
    """One Bench per build for the A/B scripts (`bins`: name → bin dir), each gustd with a
    cgroup root of its own (the name added to it), so that both can run at once."""
    benches = {name: Bench(os.path.abspath(path), rounds, 0) for name, path in bins.items()}
    for name, b in benches.items():
        b.cgroup_root += '-' + name
    return benches


def stop_side_by_side(benches):
    """Stops each gustd by its PID, removes its cgroups and its scratch directory."""
    for b in benches.values():
        b.stop_gustd()
        b.remove_cgroups()
        shutil.rmtree(b.dir, ignore_errors=True)


class Bench:
    def __init__(self, bin_dir, rounds, calls, user=None, settle=0.0):
        self.user = user
        self.settle = settle
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
        if user:
            self.env.update(PATH='/usr/local/bin:/usr/bin:/bin', HOME=self.dir)
        self.gustd = None
        self.port = None
        # Its own cgroup root (--cgroup-root): a gustd starting on the same machine with the
        # standard root ("gust") sweeps what it finds there, the instances of this one included.
        self.cgroup_root = f'gust-bench-{os.getpid()}'

    # Processes

    def run(self, *args, cwd=None):
        if self.user:  # everything as gustd's user, as a real installation runs
            args = ('setpriv', f'--reuid={self.user}', f'--regid={self.user}', '--init-groups', '--') + args
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
        command = [os.path.join(self.bin, 'gustd'), '--home', self.home, '--http', '127.0.0.1:0',
                   '--cgroup-root', self.cgroup_root, *options]
        if self.user:
            command = ['setpriv', f'--reuid={self.user}', f'--regid={self.user}', '--init-groups', '--'] + command
        self.gustd = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(address_file) and open(address_file).read().strip():
                self.port = int(open(address_file).read().strip().rsplit(':', 1)[1])
                return
            if self.gustd.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit('gustd did not start; see ' + log.name)

    def remove_cgroups(self):
        """The bench's cgroup root in each hierarchy, once gustd has stopped (deepest first; empty by then),
        and gustd's own cgroup beside it (`--cpu-weight`: the root's name and a `d`)."""
        for hierarchy in (os.listdir('/sys/fs/cgroup') if os.path.isdir('/sys/fs/cgroup') else []):
            for name in (self.cgroup_root, self.cgroup_root + 'd'):
                root = os.path.join('/sys/fs/cgroup', hierarchy, name)
                for directory, _, _ in sorted(os.walk(root), key=lambda entry: -entry[0].count('/')):
                    try:
                        os.rmdir(directory)
                    except OSError:
                        pass

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
        if self.user:
            shutil.chown(self.work, self.user, self.user)
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
        # Unsandboxed: run/instances/ID.sock; sandboxed: run/instances/ID/instance.sock, or
        # run/instances/ZYGOTE/ID/instance.sock for a fork of a Python release's zygote.
        for _ in range(100):  # the replaced release's instance may still be stopping (up to 10 s)
            sockets = [name for name in os.listdir(instances) if name.endswith('.sock')]
            for directory, _, files in os.walk(instances):
                if 'instance.sock' in files:
                    sockets.append(os.path.relpath(os.path.join(directory, 'instance.sock'), instances))
            if len(sockets) == 1:
                break
            time.sleep(0.1)
        if len(sockets) != 1:
            sys.exit(f'expected one running instance, found {sockets}')
        socket_path = os.path.join(instances, sockets[0])
        # The app's handler on both sides: an op's internal path needs the instance's secret,
        # which only gustd holds (a forked instance has it in no environment).
        direct = self.latency(lambda: UnixHTTPConnection(socket_path), '/ping')
        through = self.latency(lambda: http.client.HTTPConnection('127.0.0.1', self.port), '/apps/bench/ping')
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

    def sandbox_comparison(self):
        """Cold start, warm p50 and scale-out with and without the sandbox. The modes take turns
        (none, bubblewrap, then bubblewrap, none, …; gustd restarted for each turn), so that a
        loaded machine's swings fall on both: each turn times the first call (a cold start) and
        then calls / rounds warm calls for a p50; the medians of the turns are compared. The
        scale-out is timed once per mode at the end."""
        # Idle 1 s: after the warm calls the instance stops, then its zygote (4 × idle), for a cold
        # start with gustd running (what gustd keeps per app, a prepared sandbox, kept too).
        self.gust('scale', 'bench', '--min', '0', '--idle', '1s')
        modes = ['none', 'bubblewrap']
        colds = {mode: [] for mode in modes}
        agains = {mode: [] for mode in modes}
        p50s = {mode: [] for mode in modes}
        p99s = {mode: [] for mode in modes}
        calls = self.calls
        self.calls = max(500, calls // self.rounds)
        try:
            for turn in range(self.rounds):
                for mode in (modes if turn % 2 == 0 else list(reversed(modes))):
                    self.stop_gustd()
                    self.start_gustd('--sandbox', mode)
                    time.sleep(self.settle)  # gustd at work on its own start (e.g. an app's prepared sandbox) first
                    connection = http.client.HTTPConnection('127.0.0.1', self.port)
                    started = time.perf_counter()
                    if self.answer_version(connection) is None:
                        sys.exit(f'no answer with --sandbox {mode}; see gustd.log')
                    colds[mode].append((time.perf_counter() - started) * 1000)
                    connection.close()
                    warm = self.latency(lambda: http.client.HTTPConnection('127.0.0.1', self.port), '/apps/bench/_/functions/ping')
                    p50s[mode].append(warm['p50_ms'])
                    p99s[mode].append(warm['p99_ms'])
                    self.wait_until(lambda: not json.loads(self.gust('ps', 'bench', '--json')), 60, 'the app to stop after idle')
                    connection = http.client.HTTPConnection('127.0.0.1', self.port)
                    started = time.perf_counter()
                    if self.answer_version(connection) is None:
                        sys.exit(f'no answer with --sandbox {mode}; see gustd.log')
                    agains[mode].append((time.perf_counter() - started) * 1000)
                    connection.close()
        finally:
            self.calls = calls
        results = {}
        for mode in modes:
            results[mode] = {'cold_ms': statistics.median(colds[mode]), 'warm_p50_ms': statistics.median(p50s[mode]),
                             'warm_p99_ms': statistics.median(p99s[mode]), 'scale_out_ms': None}
            results[mode]['cold_again_ms'] = statistics.median(agains[mode])
            print(f"--sandbox {mode:<10}  cold starts {', '.join(f'{c:.1f}' for c in colds[mode])} ms", flush=True)
            print(f"--sandbox {mode:<10}  cold starts with gustd running {', '.join(f'{c:.1f}' for c in agains[mode])} ms", flush=True)
        for mode in modes:
            # Scale-out: a second instance while the first is busy, forked from the release's zygote
            # (in the app's sandbox under bubblewrap; before zygotes ran there, a fresh sandbox and interpreter).
            # A scale-out that fails is reported as such; the cold starts and calls above still are.
            try:
                self.stop_gustd()
                self.start_gustd('--sandbox', mode)
                if not os.path.exists(os.path.join(self.home, 'repos', 'starts.git')):
                    self.push_app('starts', {'main.py': STARTS_CODE, 'requirements.txt': 'six\n'})
                results[mode]['scale_out_ms'] = self.scale_out('starts', max(self.rounds, 5))
                self.gust('scale', 'starts', '--min', '0')
            except SystemExit as failure:
                print(f'--sandbox {mode}: the scale-out failed: {failure}', flush=True)
        outs = [results[mode]['scale_out_ms'] for mode in modes]
        results['added_scale_out_ms'] = outs[1] - outs[0] if None not in outs else None
        results['added_cold_ms'] = results['bubblewrap']['cold_ms'] - results['none']['cold_ms']
        results['added_cold_again_ms'] = results['bubblewrap']['cold_again_ms'] - results['none']['cold_again_ms']
        results['added_p50_ms'] = results['bubblewrap']['warm_p50_ms'] - results['none']['warm_p50_ms']
        results['rounds'] = self.rounds
        results['settle_s'] = self.settle
        # Paired: each turn ran both modes one after the other, so bubblewrap − none within a turn
        # leaves out most of the load's drift between turns; the median of those differences and their spread.
        for name, samples in (('cold', colds), ('cold_again', agains), ('p50', p50s)):
            differences = sorted(b - n for n, b in zip(samples['none'], samples['bubblewrap']))
            quartiles = statistics.quantiles(differences, n=4) if len(differences) > 1 else [differences[0]] * 3
            results[f'paired_{name}_ms'] = {
                'median': statistics.median(differences), 'q1': quartiles[0], 'q3': quartiles[2],
                'min': differences[0], 'max': differences[-1], 'positive': sum(d > 0 for d in differences), 'turns': len(differences),
            }
        return results

    def metrics_cost(self, rounds=3, option='--metrics'):
        """The warm op through gustd without and with --metrics (or --console), alternately, gustd restarted each time."""
        p50 = {False: [], True: []}
        p99 = {False: [], True: []}
        for _ in range(rounds):
            for metrics in (False, True):
                self.stop_gustd()
                self.start_gustd(*([option, '127.0.0.1:0'] if metrics else []))
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

    # Starting instances (the zygote)

    def call(self, app, op, body=b'{}', timeout=30):
        connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            connection.request('POST', f'/apps/{app}/_/functions/{op}', body=body)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        if response.status != 200:
            sys.exit(f'{app} {op} answered {response.status}: {payload[:300]!r}')
        return json.loads(payload)

    def timed_call(self, app, op):
        started = time.perf_counter()
        answer = self.call(app, op)
        return (time.perf_counter() - started) * 1000, answer

    def ps(self, app):
        """The app's instances (`gust ps` lists a resident zygote too, as kind "zygote")."""
        return [i for i in json.loads(self.gust('ps', app, '--json')) if i.get('kind') != 'zygote']

    def wait_until(self, condition, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.02)
        sys.exit(f'{what}: not within {seconds} s')

    @staticmethod
    def alive(pid):
        try:
            with open(f'/proc/{pid}/stat') as stat:
                return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
        except OSError:
            return False

    @staticmethod
    def pss_kib(pid):
        with open(f'/proc/{pid}/smaps_rollup') as rollup:
            for line in rollup:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
        return 0

    def push_app(self, app, files):
        work = os.path.join(self.dir, 'work-' + app)
        os.makedirs(work, exist_ok=True)
        if self.user:
            shutil.chown(work, self.user, self.user)
        self.run('git', 'init', '-q', '-b', 'main', cwd=work)
        for name, text in files.items():
            with open(os.path.join(work, name), 'w') as f:
                f.write(text)
            if self.user:
                shutil.chown(os.path.join(work, name), self.user, self.user)
        self.run('git', 'add', '-A', cwd=work)
        self.run('git', 'commit', '-q', '--allow-empty', '-m', app, cwd=work)
        self.gust('apps', 'create', app)
        self.run('git', 'push', '-q', os.path.join(self.home, 'repos', f'{app}.git'), 'main', cwd=work)

    def scale_out(self, app, rounds):
        """The one instance is busy with a slow call; a second call needs a new one: its p50 (ms)."""
        self.gust('scale', app, '--min', '1', '--max', '2', '--idle', '1s')
        self.call(app, 'ping')
        samples = []
        for _ in range(rounds + 1):
            self.wait_until(lambda: len(self.ps(app)) == 1, 30, 'the extra instance to stop after idle')
            busy = threading.Thread(target=self.call, args=(app, 'slow', b'{"seconds": 0.6}'))
            busy.start()
            self.wait_until(lambda: any(i['state'] == 'busy' for i in self.ps(app)), 10, 'the slow call to start')
            samples.append(self.timed_call(app, 'ping')[0])
            busy.join()
        return statistics.median(samples[1:])

    def starts(self):
        app, rounds = 'starts', max(self.rounds, 5) * 2
        # Without the sandbox: the zygote's and forks' PSS and pids are read from the host as they are
        # (under the sandbox `parent` would be the sandbox's pid); the sandbox's scale-out is in `sandbox`.
        self.stop_gustd()
        self.start_gustd('--sandbox', 'none')
        self.push_app(app, {'main.py': STARTS_CODE, 'requirements.txt': 'six\n'})
        results = {'rounds': rounds, 'cgroup_favordynmods': favordynmods()}

        results['scale_out_ms'] = self.scale_out(app, rounds)

        # From zero instances, the zygote resident: the instance stops after idle (1 s), the
        # zygote only after zygote-idle (4 × idle); each call forks.
        self.gust('scale', app, '--min', '0', '--max', '2', '--idle', '1s')
        samples, parents = [], set()
        for _ in range(rounds + 1):
            self.wait_until(lambda: not self.ps(app), 30, 'the instances to stop after idle')
            took, answer = self.timed_call(app, 'ping')
            samples.append(took)
            parents.add(answer['parent'])
        results['from_zero_zygote_ms'] = statistics.median(samples[1:])
        results['from_zero_zygotes'] = len(parents)

        # Cold start from nothing: no instance and no zygote (gone after zygote-idle), each followed
        # by the release's own interpreter importing the app as the runtime's start script sets it
        # up, so that a sample and its import see the same machine (minutes apart, a busy host's
        # swings were larger than what was measured).
        release = os.path.join(self.home, 'releases', app, 'v1')
        python = os.path.join(release, '.venv', 'bin', 'python')
        environment = dict(self.env, PYTHONPATH=os.path.join(release, '.gust', 'runtime'))
        samples, imports = [], []
        for _ in range(max(self.rounds, 5)):
            zygote = self.call(app, 'ping')['parent']
            self.wait_until(lambda: not self.ps(app), 30, 'the instance to stop after idle')
            self.wait_until(lambda: not self.alive(zygote), 30, 'the zygote to stop after zygote-idle')
            samples.append(self.timed_call(app, 'ping')[0])
            started = time.perf_counter()
            subprocess.run([python, '-c', 'import main'], cwd=release, env=environment, check=True)
            imports.append((time.perf_counter() - started) * 1000)
        results['cold_start_ms'] = statistics.median(samples)
        results['import_app_ms'] = statistics.median(imports)
        results['cold_over_import_per_round'] = statistics.median(c / i for c, i in zip(samples, imports))
        results['interpreter'] = python
        results['interpreter_resolved'] = os.path.realpath(python)

        # Memory: PSS of the zygote and each fork with 4 idle instances, then with 1.
        self.gust('scale', app, '--min', '4', '--max', '4', '--idle', '5m')
        self.wait_until(lambda: len([i for i in self.ps(app) if i['state'] == 'idle']) == 4, 30, 'four idle instances')
        time.sleep(1)
        forks = [i['pid'] for i in self.ps(app)]
        zygote = self.call(app, 'ping')['parent']
        total_four = self.pss_kib(zygote) + sum(self.pss_kib(pid) for pid in forks)
        results['fork_pss_kib'] = statistics.median(self.pss_kib(pid) for pid in forks)
        results['zygote_pss_kib'] = self.pss_kib(zygote)
        self.gust('scale', app, '--min', '1', '--max', '1', '--idle', '1s')
        self.wait_until(lambda: len(self.ps(app)) == 1, 30, 'one instance left')
        time.sleep(1)
        total_one = self.pss_kib(zygote) + sum(self.pss_kib(i['pid']) for i in self.ps(app))
        results['extra_instance_pss_kib'] = (total_four - total_one) / 3

        # gustd with 50 idle apps scaled to zero (their instances and zygotes stopped).
        for n in range(50):
            name = f'idle{n}'
            self.push_app(name, {'main.py': STARTS_CODE, 'requirements.txt': 'six\n'})
            self.gust('scale', name, '--min', '0', '--idle', '1s')
        self.gust('scale', app, '--min', '0', '--idle', '1s')
        records = os.path.join(self.home, 'run', 'instances')
        scaled = {app} | {f'idle{n}' for n in range(50)}

        def running_of_scaled():
            """Records of the 51 apps' processes (in the whole run, the deploys' app keeps its instance)."""
            found = []
            for name in os.listdir(records):
                if not name.endswith('.json'):
                    continue
                try:
                    with open(os.path.join(records, name)) as record:
                        if json.load(record).get('app') in scaled:
                            found.append(name)
                except (OSError, ValueError):
                    found.append(name)  # being written: looked at again
            return found
        self.wait_until(lambda: not running_of_scaled(), 120, 'the 51 apps to stop their instances and zygotes')
        with open(f'/proc/{self.gustd.pid}/status') as status:
            rss = next(line for line in status if line.startswith('VmRSS:'))
        results['gustd_rss_50_idle_mib'] = int(rss.split()[1]) / 1024
        return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='directory with gust, gust-receive and gustd (a release build)')
    parser.add_argument('--rounds', type=int, default=5, help='pushes and rollbacks to take the median of')
    parser.add_argument('--calls', type=int, default=5000, help='op calls per latency measurement')
    parser.add_argument('--only', choices=['deploys', 'starts', 'metrics', 'console', 'sandbox'],
                        help='run one part: pushes, calls and rollbacks; starts; the metrics cost or the sandbox comparison (after one push)')
    parser.add_argument('--json', action='store_true', help='print the results as JSON')
    parser.add_argument('--user', help='run gustd as this user (root only; give it a subordinate uid range)')
    parser.add_argument('--sandbox-only', action='store_true', help='the same as --only sandbox')
    parser.add_argument('--settle', type=float, default=0.0,
                        help="sandbox comparison: seconds between gustd's start and its first call (default 0: at once)")
    args = parser.parse_args()
    if args.sandbox_only:
        args.only = 'sandbox'

    bench = Bench(os.path.abspath(args.bin), args.rounds, args.calls, args.user, args.settle)
    if args.user:
        os.makedirs(bench.home)
        subprocess.run(['chown', '-R', args.user, bench.dir], check=True)
        os.chmod(bench.dir, 0o755)
    results = {}
    try:
        bench.start_gustd()
        if args.only == 'metrics':
            bench.first_push()
            results['metrics'] = bench.metrics_cost()
        elif args.only == 'console':
            bench.first_push()
            results['console'] = bench.metrics_cost(option='--console')
        elif args.only == 'sandbox':
            bench.first_push()
            results['sandbox'] = bench.sandbox_comparison()
        else:
            if args.only != 'starts':
                results.update({'pushes': bench.pushes(), 'op_latency': bench.op_latency(), 'rollback': bench.rollbacks()})
                if args.only != 'deploys':
                    results['metrics'] = bench.metrics_cost()
            if args.only != 'deploys':
                results['starts'] = bench.starts()
            if args.only is None:
                results['sandbox'] = bench.sandbox_comparison()
    finally:
        bench.stop_gustd()
        bench.remove_cgroups()
        shutil.rmtree(bench.dir, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    if 'metrics' in results:
        m = results['metrics']
        metrics_line = (f"metrics, warm op p50 without / with   {m['without_p50_ms']:.3f} / {m['with_p50_ms']:.3f} ms "
                        f"(p99 {m['without_p99_ms']:.3f} / {m['with_p99_ms']:.3f}): {m['added_p50_us']:+.1f} µs per call, "
                        f"median of {m['rounds']} restarts each, {m['calls']} calls each")
        print(metrics_line)
    if 'console' in results:
        m = results['console']
        print(f"console, warm op p50 without / with   {m['without_p50_ms']:.3f} / {m['with_p50_ms']:.3f} ms "
              f"(p99 {m['without_p99_ms']:.3f} / {m['with_p99_ms']:.3f}): {m['added_p50_us']:+.1f} µs per call, "
              f"median of {m['rounds']} restarts each, {m['calls']} calls each")
    if 'pushes' in results:
        p, o, r = results['pushes'], results['op_latency'], results['rollback']
        print(f"first push, one dependency from PyPI   {p['first_push_s']:.2f} s wall ({p['first_build_s']:.2f} s build)")
        print(f"unchanged dependencies, git push       {p['unchanged_push_s']:.2f} s wall ({p['unchanged_build_s']:.2f} s build), median of {p['rounds']}")
        print(f"push to live (push start → new answer) {p['push_to_live_s']:.2f} s, median of {p['rounds']}")
        print(f"warm call, instance socket directly    p50 {o['direct']['p50_ms']:.3f} ms  p99 {o['direct']['p99_ms']:.3f} ms")
        print(f"warm call, through gustd (HTTP)        p50 {o['gustd']['p50_ms']:.3f} ms  p99 {o['gustd']['p99_ms']:.3f} ms")
        print(f"gustd's own health endpoint (no call)  p50 {o['gustd_alone']['p50_ms']:.3f} ms  p99 {o['gustd_alone']['p99_ms']:.3f} ms")
        print(f"gustd adds at p50                      {o['added_p50_ms']:.3f} ms, {o['calls']} calls each")
        print(f"rollback (command → old answer)        {r['rollback_s']:.2f} s, median of {r['rounds']}")
    if 'starts' in results:
        s = results['starts']
        print(f"scale-out (second instance, first busy) p50 {s['scale_out_ms']:.1f} ms, {s['rounds']} rounds (aim < 10 ms); "
              f"cgroup v2 favordynmods {s['cgroup_favordynmods']} (docs/operations.md, \"Quick cgroup moves\")")
        print(f"from zero, zygote resident → answer    p50 {s['from_zero_zygote_ms']:.1f} ms, {s['from_zero_zygotes']} zygote(s) (aim < 10 ms)")
        print(f"cold start from nothing → answer       p50 {s['cold_start_ms']:.1f} ms")
        print(f"release interpreter -c 'import main'   p50 {s['import_app_ms']:.1f} ms ({s['interpreter']} → {s['interpreter_resolved']}); "
              f"ratio of p50s {s['cold_start_ms'] / s['import_app_ms']:.2f}, per round {s['cold_over_import_per_round']:.2f} (aim ≤ 1.1)")
        print(f"PSS of an extra idle instance          {s['extra_instance_pss_kib'] / 1024:.1f} MiB marginal; "
              f"{s['fork_pss_kib'] / 1024:.1f} MiB each of 4 forks, zygote {s['zygote_pss_kib'] / 1024:.1f} MiB (aim < 5 MB)")
        print(f"gustd RSS, 50 idle apps scaled to zero {s['gustd_rss_50_idle_mib']:.1f} MiB (aim < 100 MB)")

    if 'sandbox' in results:
        print_sandbox(results['sandbox'])


def print_sandbox(b):
    for mode in ['none', 'bubblewrap']:
        print(f"--sandbox {mode:<10}  cold start {b[mode]['cold_ms']:7.1f} ms (median of {b['rounds']})  "
              f"warm p50 {b[mode]['warm_p50_ms']:.3f} ms  p99 {b[mode]['warm_p99_ms']:.3f} ms  scale-out {milliseconds(b[mode]['scale_out_ms'])}")
    for mode in ('none', 'bubblewrap'):
        print(f"--sandbox {mode:<10}  cold start with gustd running {b[mode]['cold_again_ms']:7.1f} ms (median of {b['rounds']})")
    print(f"the sandbox adds                       {b['added_cold_again_ms']:.1f} ms to a cold start with gustd running (after idle)")
    print(f"the sandbox adds                       {b['added_cold_ms']:.1f} ms to a cold start, {b['added_p50_ms']:.3f} ms to a call's p50, "
          f"{milliseconds(b['added_scale_out_ms'])} to a scale-out")
    names = {'cold': "first call after gustd's start", 'cold_again': 'cold start with gustd running', 'p50': "a call's p50"}
    for name, what in names.items():
        d = b[f'paired_{name}_ms']
        digits = 3 if name == 'p50' else 1
        print(f"paired, bubblewrap − none per turn     {what}: median {d['median']:+.{digits}f} ms, quartiles "
              f"{d['q1']:+.{digits}f} … {d['q3']:+.{digits}f}, range {d['min']:+.{digits}f} … {d['max']:+.{digits}f}, "
              f"{d['positive']} of {d['turns']} turns positive")
    if b.get('settle_s'):
        print(f"(each first call {b['settle_s']:g} s after gustd's start)")


def milliseconds(value):
    return 'failed' if value is None else f'{value:.1f} ms'


if __name__ == '__main__':
    main()
