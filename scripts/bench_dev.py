#!/usr/bin/env python3
"""The developer's loop, measured (docs/benchmarks.md, "gust dev"):

    scripts/bench_dev.py --bin .build/release [--rounds 10]

For each sample app (examples/python-cats, examples/node-reviews), in a throwaway
copy with a throwaway XDG_CACHE_HOME and GUST_HOME:

  dev start, cold   `gust dev` started to its "Serving" line, nothing cached (the
                    dependency build: venv or node_modules, runtime, start script)
  dev start, warm   the same after a restart: dependencies cached, code copied
  reload            a source file rewritten to the first HTTP answer that shows the
                    change (polled every 2 ms), median and worst of --rounds edits
  push, first       `git push` of the same app to a gustd (build, pack, start, switch)
  push, code only   a push that changes only code (dependencies cached)

Every process is started here and stopped by its PID. Python 3 standard library only.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APPS = {
    'python-cats': {
        'file': 'food.py',
        'source': "PRICES = {{'salmon': {n}, 'tuna': 3.0, 'kibble': 1.25}}\n",
        'call': ('/_/functions/food:buy', {'food': 'salmon'}),
        'shows': lambda answer, n: answer.get('price') == n,
    },
    'node-reviews': {
        'file': 'index.js',
        'edit': lambda text, n: re.sub(r"Hello, \$\{name\}!(\d*)", 'Hello, ${name}!%d' % n, text),
        'call': ('/_/functions/hello', {'name': 'x'}),
        'shows': lambda answer, n: answer.get('greeting') == 'Hello, x!%d' % n,
    },
}


def call(port, path, body):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        connection.request('POST', path, json.dumps(body), {'Content-Type': 'application/json'})
        response = connection.getresponse()
        data = response.read()
        return json.loads(data) if response.status == 200 else {}
    except (OSError, ValueError):
        return {}
    finally:
        connection.close()


class Dev:
    """One `gust dev` process, its output in a file."""

    def __init__(self, bin_dir, directory, env, log_path):
        self.log_path = log_path
        self.log = open(log_path, 'w')
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [os.path.join(bin_dir, 'gust'), 'dev', directory, '--port', '0'], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with open(log_path) as f:
                match = re.search(r'-----> Serving http://127\.0\.0\.1:(\d+)/', f.read())
            if match:
                self.port = int(match.group(1))
                self.ready = time.monotonic() - self.started
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.005)
        self.stop()
        sys.exit('gust dev did not start; see ' + log_path)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def edit(directory, app, n):
    spec = APPS[app]
    path = os.path.join(directory, spec['file'])
    if 'source' in spec:
        text = spec['source'].format(n=n)
    else:
        with open(path) as f:
            text = spec['edit'](f.read(), n)
    with open(path, 'w') as f:
        f.write(text)


def measure_dev(bin_dir, app, rounds, scratch):
    directory = os.path.join(scratch, app)
    shutil.copytree(os.path.join(ROOT, 'examples', app), directory)
    if 'edit' in APPS[app]:
        edit(directory, app, 0)  # a marker the edits change
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(scratch, 'cache'))
    env.pop('GUST_HOME', None)
    cold = Dev(bin_dir, directory, env, os.path.join(scratch, app + '-cold.log'))
    cold.stop()
    dev = Dev(bin_dir, directory, env, os.path.join(scratch, app + '-warm.log'))
    try:
        path, body = APPS[app]['call']
        call(dev.port, path, body)
        reloads = []
        for n in range(1, rounds + 1):
            value = n + 0.5 if app == 'python-cats' else n
            time.sleep(0.3)  # a developer's save, not a burst
            started = time.monotonic()
            edit(directory, app, value)
            while not APPS[app]['shows'](call(dev.port, path, body), value):
                if time.monotonic() - started > 30:
                    sys.exit('%s: edit %d not served within 30 s; see %s' % (app, n, dev.log_path))
                time.sleep(0.002)
            reloads.append(time.monotonic() - started)
    finally:
        dev.stop()
    return cold.ready, dev.ready, reloads


def measure_push(bin_dir, app, scratch):
    home = os.path.join(scratch, 'home-' + app)
    env = dict(os.environ, GUST_HOME=home, GIT_AUTHOR_NAME='b', GIT_AUTHOR_EMAIL='b@x', GIT_COMMITTER_NAME='b', GIT_COMMITTER_EMAIL='b@x')
    subprocess.run([os.path.join(bin_dir, 'gust'), 'apps', 'create', 'bench'], env=env, check=True, stdout=subprocess.DEVNULL)
    log = open(os.path.join(scratch, 'gustd-%s.log' % app), 'w')
    gustd = subprocess.Popen([os.path.join(bin_dir, 'gustd'), '--home', home, '--http', '127.0.0.1:0', '--sandbox', 'none'],
                             env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(home, 'run', 'gustd.http')):
            if time.monotonic() > deadline or gustd.poll() is not None:
                sys.exit('gustd did not start; see ' + log.name)
            time.sleep(0.01)
        work = os.path.join(scratch, 'push-' + app)
        shutil.copytree(os.path.join(ROOT, 'examples', app), work)
        git = lambda *args: subprocess.run(['git', '-C', work, *args], env=env, check=True, capture_output=True)
        git('init', '-q', '-b', 'main')
        git('add', '-A')
        git('commit', '-q', '-m', 'one')
        remote = os.path.join(home, 'repos', 'bench.git')
        started = time.monotonic()
        git('push', '-q', remote, 'main')
        first = time.monotonic() - started
        edit(work, app, 7.5 if app == 'python-cats' else 7)
        git('commit', '-q', '-am', 'two')
        started = time.monotonic()
        git('push', '-q', remote, 'main')
        code_only = time.monotonic() - started
        return first, code_only
    finally:
        gustd.send_signal(signal.SIGTERM)
        try:
            gustd.wait(30)
        except subprocess.TimeoutExpired:
            gustd.kill()
            gustd.wait()
        log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='directory with gust and gustd (a release build)')
    parser.add_argument('--rounds', type=int, default=10, help='edits per app')
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin)
    scratch = tempfile.mkdtemp(prefix='gust-bench-dev-')
    try:
        print('gust dev (%s, %d edits per app)' % (bin_dir, args.rounds))
        for app in APPS:
            cold, warm, reloads = measure_dev(bin_dir, app, args.rounds, scratch)
            first, code_only = measure_push(bin_dir, app, scratch)
            ms = lambda s: '%.0f ms' % (s * 1000)
            print('  %-13s dev start cold %s, warm %s | reload median %s, worst %s | push first %s, code only %s' % (
                app, ms(cold), ms(warm), ms(statistics.median(reloads)), ms(max(reloads)), ms(first), ms(code_only)))
            sys.stdout.flush()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
    main()
