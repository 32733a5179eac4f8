#!/usr/bin/env python3
"""Gust beside its peer: the same tiny Python app served by gustd and by nginx + uWSGI.

Run with `make bench` (a release build) or `scripts/bench_peers.py --bin DIR`. Everything
runs in a throwaway directory on free loopback ports and is removed at the end; every
process started here is stopped by its PID whatever happens.

The two sides:
  Gust   gustd from --bin in a throwaway GUST_HOME, with an app pushed by the real
         `git push`: a handler that answers a short string and one that sleeps 50 ms
         (standing for a call that waits on I/O), and a Flask app mounted at /flask
         (gust.mount) whose /hello answers the same string.
  peer   nginx in front of uWSGI, as Piku configures them for a WSGI app: uWSGI over a
         Unix socket with Piku's per-worker settings (master, max-requests 1024,
         listen 16, 4 threads, one process per worker) and as many processes as Gust
         has instances (--instances, 4: Gust's pool fixed with gust scale --min N --max N),
         run as Piku runs it: under a uWSGI emperor watching a directory of vassal configs;
         nginx with one worker process. Both configs are printed.
         uWSGI 2.0 can hang for 60 s recycling a threaded worker at max-requests;
         the report says when it did, and --uwsgi-max-requests 0 measures without it.

Measured, with wrk from this machine, each row on both sides in the same run one after
the other, each side after a warm-up of its own:
  trivial handler      wrk -t2 -c16 and -t2 -c64
  50 ms handler        wrk -t2 -c64
  Flask hello          the same Flask view, through gust.mount and through uWSGI, wrk -t2 -c16
  health               gustd's own health endpoint (no instance involved) against
                       nginx's `return 200`, one worker each, wrk -t2 -c16
  deploys              (issue 11) wrk -t2 -c64 on a handler that answers the app's version,
                       and during it a deploy of a code change and then a rollback: on Gust
                       a real `git push` and `gust rollback`; on the peer what Piku does on a
                       push whose requirements did not change (the new code in place, the
                       vassal's config removed from the emperor's directory and copied back,
                       which the emperor answers with a graceful reload), and for the rollback
                       the same with the old code (Piku has no rollback). Reported: requests,
                       non-2xx by status and when, socket errors, p50/p99/max latency (wrk's),
                       the answers of each version (a switch must have happened), and the time
                       from the deploy and from the rollback to the new answer, timed by one
                       more client calling in turn (as scripts/bench.py times them), whose
                       slowest calls are given with their time; a second one calls the server's
                       own health (gustd's, nginx's return 200) meanwhile. Each server's access
                       log splits the calls by phase (before, deploying, new version live,
                       rolling back, old version again); then the same deploy and rollback
                       without load. `--only deploys` runs just this.
For each serving row: requests answered 2xx or 3xx per second (a quick 502 is not a served call),
p50 and p99 latency (wrk's latency histogram, the one `--latency` prints, read through a
`done()` hook), responses that were not 2xx or 3xx, socket errors (a call slower than
--timeout is one), and the ratio Gust / peer of the requests answered per second.
Before each warm-up and each measurement, one call waits for the calls the previous
wrk left queued to drain.

wrk runs here, on the machine it measures, in the bench's session: one autogroup at the
default weight, beside gustd's own cgroup (`gustd --cpu-weight`) and the instances'. So its
latencies include wrk itself waiting for a CPU, which a client on another host would not pay.
--client-weight N (a measurement aid, off by default) runs every wrk, warm-ups included and on
both sides alike, in a cgroup v1 cpu cgroup of its own, /sys/fs/cgroup/cpu/gust-bench-client-PID
with cpu.shares N × 1024 / 100 (as gustd's --cpu-weight), made before the first wrk and removed
at the end; the probes, `git push` and `gust rollback` stay in the bench's session.
"""

import argparse
import contextlib
import datetime
import getpass
import grp
import http.client
import json
import os
import platform
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

GUST_APP = '''import time

import gust
from flask import Flask

# The same Flask app as the peer's, mounted beside Gust's handlers (gust.mount).
web = Flask(__name__)


@web.get('/hello')
def flask_hello():
    return 'hello'


gust.mount('/flask', web)


@gust.handler('hello', methods=['GET', 'POST'])  # POST: bench_added.py --post
def hello(request):
    return 'hello'


@gust.op('hello')  # bench_added.py --op
def hello_op(n=0):
    return 'hello'


VERSION = 'v1'  # what a deploy changes (the deploys measurement)


@gust.handler('version')
def version(request):
    return VERSION


@gust.handler('slow')
def slow(request):
    time.sleep(0.05)  # stands for a call that waits on I/O
    return 'slept'
'''

# The same two functions as a plain WSGI app, the way Piku serves a Python app.
WSGI_APP = '''import time


def hello():
    return 'hello'


def slow():
    time.sleep(0.05)  # stands for a call that waits on I/O
    return 'slept'


VERSION = 'v1'  # what a deploy changes (the deploys measurement)


def version():
    return VERSION


ROUTES = {'/hello': hello, '/slow': slow, '/version': version}

# A Flask hello under /flask, as on Gust's side (python3-flask, scripts/install-deps.sh --bench).
from flask import Flask  # noqa: E402

web = Flask(__name__)


@web.get('/flask/hello')
def flask_hello():
    return 'hello'


def application(environ, start_response):
    if environ['PATH_INFO'].startswith('/flask/'):
        return web(environ, start_response)
    function = ROUTES.get(environ['PATH_INFO'])
    if function is None:
        start_response('404 Not Found', [('Content-Type', 'text/plain'), ('Content-Length', '0')])
        return [b'']
    body = function().encode()
    start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8'), ('Content-Length', str(len(body)))])
    return [body]
'''

# Piku's spawn_worker settings for a `wsgi` worker behind nginx (its defaults, no
# UWSGI_* overrides), less what only concerns Piku's own layout (uid, gid, procname,
# log rotation): the log goes to the file stderr is sent to.
UWSGI_INI = '''[uwsgi]
chdir = {app_dir}
master = true
max-requests = {max_requests}
listen = 16
processes = {processes}
enable-threads = true
threads = 4
module = app:application
plugin = python3
socket = {socket}
chmod-socket = 664
'''

# Piku's site template for a WSGI app (upstream on the Unix socket, uwsgi_pass with its
# uwsgi_param list, its X-Deployed-By header), with one worker process, everything it
# writes kept in the scratch directory, and a `return 200` location for the health row.
NGINX_CONF = '''{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;

events {{
  worker_connections 768;
}}

http {{
  # The bench's own log format (Piku leaves nginx's): when each call ended and how long it took.
  log_format timed '$msec $status $request_time "$request"';
  access_log {dir}/nginx-access.log timed;
  client_body_temp_path {dir}/nginx-temp/body;
  proxy_temp_path {dir}/nginx-temp/proxy;
  fastcgi_temp_path {dir}/nginx-temp/fastcgi;
  uwsgi_temp_path {dir}/nginx-temp/uwsgi;
  scgi_temp_path {dir}/nginx-temp/scgi;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;

  upstream bench {{
    server unix:{socket};
  }}

  server {{
    listen 127.0.0.1:{port};
    add_header X-Deployed-By Piku;

    location = /health {{
      return 200;
    }}

    location / {{
      uwsgi_pass bench;
      uwsgi_param QUERY_STRING $query_string;
      uwsgi_param REQUEST_METHOD $request_method;
      uwsgi_param CONTENT_TYPE $content_type;
      uwsgi_param CONTENT_LENGTH $content_length;
      uwsgi_param REQUEST_URI $request_uri;
      uwsgi_param PATH_INFO $document_uri;
      uwsgi_param DOCUMENT_ROOT $document_root;
      uwsgi_param SERVER_PROTOCOL $server_protocol;
      uwsgi_param X_FORWARDED_FOR $proxy_add_x_forwarded_for;
      uwsgi_param REMOTE_ADDR $remote_addr;
      uwsgi_param REMOTE_PORT $remote_port;
      uwsgi_param SERVER_ADDR $server_addr;
      uwsgi_param SERVER_PORT $server_port;
      uwsgi_param SERVER_NAME $server_name;
    }}
  }}
}}
'''

# wrk calls done() once at the end with its own counts and latency histogram (microseconds).
WRK_REPORT = '''done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "status": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
'''

# The deploys measurement's wrk script: besides done()'s counts and the largest latency, the
# answers counted by body (the app's version) and the other responses by status, each with the
# wall time it was first and last seen, and the same counts by tenth of a second, so that
# failures can be set beside the switches.
WRK_DEPLOY_REPORT = '''local ffi = require('ffi')
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gust_timespec;
int clock_gettime(int clock, gust_timespec *now);
]]
local clock = ffi.new('gust_timespec')
local function now()
  ffi.C.clock_gettime(0, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- Flat tables: wrk's thread:get copies one level of table only.
-- Answers (2xx) are counted by body, other responses by status, each with when first and last seen.
-- The same counts by tenth of a second go to buckets, keyed 'KEY|TENTHS SINCE 1970'.
counts, firsts, lasts, buckets = {}, {}, {}, {}
function response(status, headers, body)
  local t = now()
  local key = body
  if status < 200 or status >= 300 then
    key = 'status ' .. status
  end
  counts[key] = (counts[key] or 0) + 1
  firsts[key] = firsts[key] or t
  lasts[key] = t
  local bucket = key .. '|' .. math.floor(t * 10)
  buckets[bucket] = (buckets[bucket] or 0) + 1
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\\\]', function(c) return string.format('\\\\u%04x', c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local merged, tenths = {}, {}
  for _, thread in ipairs(threads) do
    for bucket, count in pairs(thread:get('buckets')) do
      tenths[bucket] = (tenths[bucket] or 0) + count
    end
    local firsts, lasts = thread:get('firsts'), thread:get('lasts')
    for key, count in pairs(thread:get('counts')) do
      local m = merged[key]
      if m == nil then
        merged[key] = {count = count, first = firsts[key], last = lasts[key]}
      else
        m.count = m.count + count
        m.first = math.min(m.first, firsts[key])
        m.last = math.max(m.last, lasts[key])
      end
    end
  end
  local entries = {}
  for key, m in pairs(merged) do
    table.insert(entries, string.format('%s: {"count": %d, "first": %.6f, "last": %.6f}', json_string(key), m.count, m.first, m.last))
  end
  local timeline = {}
  for bucket, count in pairs(tenths) do
    table.insert(timeline, string.format('%s: %d', json_string(bucket), count))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, "status": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "responses": {%s}, "tenths": {%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, table.concat(entries, ', '), table.concat(timeline, ', ')))
end
'''

# (what, path on Gust, path on the peer, wrk threads, wrk connections)
ROWS = [
    ('trivial handler', '/apps/bench/hello', '/hello', 2, 16),
    ('trivial handler', '/apps/bench/hello', '/hello', 2, 64),
    ('50 ms handler', '/apps/bench/slow', '/slow', 2, 64),
    ('Flask hello: gust.mount vs uWSGI', '/apps/bench/flask/hello', '/flask/hello', 2, 16),
    ('health: gustd /_/health vs nginx return 200', '/apps/bench/_/health', '/health', 2, 16),
]


@contextlib.contextmanager
def started(bin_dir, duration, gustd_args='', instances=4):
    """Both sides of the side-by-side scripts (bench_syscalls, bench_added, bench_cpu_split):
    gustd from bin_dir with the bench app pushed, and nginx in front of uWSGI, in a throwaway
    directory; every process stopped by its PID and the directory removed when the block ends."""
    bench = PeerBench(os.path.abspath(bin_dir), duration, 1, 10, 0, instances=instances, gustd_args=shlex.split(gustd_args))
    try:
        bench.start_gust()
        bench.start_peer()
        yield bench
    finally:
        bench.stop_all()
        shutil.rmtree(bench.dir, ignore_errors=True)  # the scratch directory and everything in it


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def descendants(pid):
    """PIDs of every live process below pid, read from /proc."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    parent = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class Service:
    """A process started here, stopped by its PID with its own stop signal, then by SIGKILL
    of it and every process it started that is still there after a bounded wait."""

    def __init__(self, name, args, log, stop_signal, env=None):
        self.name, self.stop_signal, self.log = name, stop_signal, log
        with open(log, 'w') as out:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def running(self):
        return self.process.poll() is None

    def stop(self, wait=10):
        if not self.running():
            return
        below = descendants(self.process.pid)
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            print(f'{self.name} did not stop within {wait} s of {self.stop_signal.name}; killing it', file=sys.stderr)
            self.process.kill()
            self.process.wait()
        deadline = time.monotonic() + wait
        for pid in below:
            while os.path.exists(f'/proc/{pid}') and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class ClientCgroup:
    """The cgroup v1 cpu cgroup every wrk runs in under --client-weight: made with its weight
    before the first wrk, removed at the end. wrk enters it itself (a shell that writes its own
    pid into cgroup.procs, then execs wrk), so the Popen's pid is still wrk's, stopped by it."""

    ROOT = '/sys/fs/cgroup/cpu'

    def __init__(self, weight):
        self.path = os.path.join(self.ROOT, f'gust-bench-client-{os.getpid()}')
        self.shares = weight * 1024 // 100
        try:
            os.mkdir(self.path)
        except OSError as error:
            sys.exit(f'--client-weight: cannot make {self.path} ({error.strerror}): '
                     'the cgroup v1 cpu controller is not mounted there or not writable')
        try:
            with open(os.path.join(self.path, 'cpu.shares'), 'w') as f:
                f.write(str(self.shares))
        except OSError as error:
            self.remove()
            sys.exit(f'--client-weight: cannot set cpu.shares in {self.path} ({error.strerror})')

    def wrap(self, args):
        """args run in this cgroup: the shell moves itself (its pid is wrk's after exec) first."""
        return ['sh', '-c', 'echo $$ > "$0" && exec "$@"', os.path.join(self.path, 'cgroup.procs')] + args

    def remove(self, wait=10):
        """rmdir once the cgroup's last wrk has gone (each was waited for; a bounded retry)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if time.monotonic() >= deadline:
                    print(f'could not remove {self.path} ({error.strerror})', file=sys.stderr)
                    return
                time.sleep(0.1)


class Probe:
    """One more client beside wrk, calling the version path in turn on a keep-alive connection
    (a new one after an error), with a short pause between calls. Its calls give what wrk
    cannot: when each version first answered (push-to-live and rollback, timed as
    scripts/bench.py times them), and when the slowest calls were, set beside the switches."""

    PAUSE = 0.005

    def __init__(self, port, path):
        self.port, self.path = port, path
        self.samples = []  # (wall time the call started, seconds it took, status or None, body)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(30)

    def loop(self):
        connection = None
        while not self.stopping.is_set():
            started = time.time()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
                connection.request('GET', self.path)
                response = connection.getresponse()
                body = response.read().decode(errors='replace')
                self.samples.append((started, time.time() - started, response.status, body))
            except (OSError, http.client.HTTPException) as error:
                self.samples.append((started, time.time() - started, None, type(error).__name__))
                connection = None
            self.stopping.wait(self.PAUSE)

    def wait_for(self, body, since, timeout=120):
        """Seconds from `since` to the end of the first call started after it that answered body."""
        deadline = time.monotonic() + timeout
        index = 0
        while time.monotonic() < deadline:
            samples = self.samples[index:]
            for started, took, status, answer in samples:
                if started >= since and status == 200 and answer == body:
                    return started + took - since
            index += len(samples)
            time.sleep(0.002)
        return None


class PeerBench:
    def __init__(self, bin_dir, duration, warmup, timeout, max_requests, instances=4, deploy_hold=3, gustd_args=(),
                 client=None):
        self.bin = bin_dir
        self.client = client  # a ClientCgroup every wrk runs in, or None
        self.gustd_args = list(gustd_args)
        self.deploy_hold = deploy_hold
        self.max_requests = max_requests
        self.duration = duration
        self.warmup = warmup
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix='gust-bench-peers.')
        self.home = os.path.join(self.dir, 'home')
        self.env = dict(os.environ, GUST_HOME=self.home, GIT_CONFIG_NOSYSTEM='1', GIT_CONFIG_GLOBAL='/dev/null',
                        GIT_AUTHOR_NAME='Bench', GIT_AUTHOR_EMAIL='bench@gust.invalid',
                        GIT_COMMITTER_NAME='Bench', GIT_COMMITTER_EMAIL='bench@gust.invalid')
        self.services = []
        self.gust_port = None
        self.peer_port = None
        self.instances = None
        self.wanted_instances = instances
        self.configs = {}
        self.phases = []  # the last deploy run's parts: (name, wall time from, wall time to)
        with open(os.path.join(self.dir, 'report.lua'), 'w') as f:
            f.write(WRK_REPORT)

    def run(self, *args, cwd=None):
        result = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            sys.exit(f'{" ".join(args)} failed:\n{result.stdout}{result.stderr}')
        return result.stdout

    def start(self, name, args, stop_signal, env=None):
        service = Service(name, args, os.path.join(self.dir, f'{name}.log'), stop_signal, env)
        self.services.append(service)
        return service

    def stop_all(self):
        for service in reversed(self.services):
            service.stop()

    def wait_until_answers(self, service, port, path, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not service.running():
                break
            try:
                connection = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
                connection.request('GET', path)
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        sys.exit(f'{service.name} did not answer {path} on port {port}; see {service.log}')

    # Gust

    def start_gust(self):
        os.makedirs(self.home)
        gustd = self.start('gustd', [os.path.join(self.bin, 'gustd'), '--home', self.home, '--http', '127.0.0.1:0']
                           + self.gustd_args,
                           signal.SIGTERM, self.env)
        address_file = os.path.join(self.home, 'run', 'gustd.http')
        deadline = time.monotonic() + 30
        while not (os.path.exists(address_file) and open(address_file).read().strip()):
            if not gustd.running() or time.monotonic() > deadline:
                sys.exit(f'gustd did not start; see {gustd.log}')
            time.sleep(0.05)
        self.gust_port = int(open(address_file).read().strip().rsplit(':', 1)[1])

        work = os.path.join(self.dir, 'gust-app')
        os.makedirs(work)
        with open(os.path.join(work, '__init__.py'), 'w') as f:
            f.write(GUST_APP)
        with open(os.path.join(work, 'requirements.txt'), 'w') as f:
            f.write('flask\n')  # from PyPI, at the push
        self.run(os.path.join(self.bin, 'gust'), 'apps', 'create', 'bench')
        self.run('git', 'init', '-q', '-b', 'main', cwd=work)
        self.run('git', 'add', '-A', cwd=work)
        self.run('git', 'commit', '-q', '-m', 'bench', cwd=work)
        self.run('git', 'push', '-q', os.path.join(self.home, 'repos', 'bench.git'), 'main', cwd=work)
        self.wait_until_answers(gustd, self.gust_port, '/apps/bench/hello')
        # A fixed pool (min = max), so both sides run the same number of workers throughout.
        self.run(os.path.join(self.bin, 'gust'), 'scale', 'bench', '--min', str(self.wanted_instances),
                 '--max', str(self.wanted_instances))
        deadline = time.monotonic() + 30
        while True:
            # The instances that are up, as `gust ps` lists them (a resident zygote is not one; where
            # an instance's socket lies depends on the sandbox and the zygote, so it is not counted).
            listed = json.loads(self.run(os.path.join(self.bin, 'gust'), 'ps', 'bench', '--json'))
            self.instances = len([i for i in listed if i.get('kind') != 'zygote' and i.get('state') in ('idle', 'busy')])
            if self.instances >= self.wanted_instances:
                break
            if time.monotonic() > deadline:
                sys.exit(f'{self.instances} of {self.wanted_instances} instances came up within 30 s: {listed}')
            time.sleep(0.1)

    # The peer

    def start_peer(self):
        app_dir = os.path.join(self.dir, 'peer-app')
        os.makedirs(app_dir)
        os.makedirs(os.path.join(self.dir, 'nginx-temp'))
        with open(os.path.join(app_dir, 'app.py'), 'w') as f:
            f.write(WSGI_APP)
        uwsgi_socket = os.path.join(self.dir, 'bench.sock')
        self.peer_port = free_port()
        # nginx started by root runs its worker as `nobody`, which could not reach a socket
        # in this private directory: name the current user, as it is when not root.
        user = ''
        if os.geteuid() == 0:
            user = f'user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n'
        self.configs = {
            'uwsgi.ini': UWSGI_INI.format(app_dir=app_dir, processes=self.instances, socket=uwsgi_socket,
                                           max_requests=self.max_requests),
            'nginx.conf': NGINX_CONF.format(user=user, dir=self.dir, socket=uwsgi_socket, port=self.peer_port),
        }
        for name, text in self.configs.items():
            with open(os.path.join(self.dir, name), 'w') as f:
                f.write(text)
        # As Piku runs it: a uWSGI emperor watching a directory of vassal configs, the app's
        # config copied in (uwsgi-available → uwsgi-enabled); a deploy rewrites that copy.
        os.makedirs(os.path.join(self.dir, 'uwsgi-enabled'))
        self.enable_vassal()
        uwsgi = self.start('uwsgi', ['uwsgi', '--emperor', os.path.join(self.dir, 'uwsgi-enabled')], signal.SIGINT)
        deadline = time.monotonic() + 30
        while not os.path.exists(uwsgi_socket):
            if not uwsgi.running() or time.monotonic() > deadline:
                sys.exit(f'uWSGI did not start; see {uwsgi.log}')
            time.sleep(0.05)
        # -e: the log nginx writes before it has read its configuration (default /var/log/nginx).
        nginx = self.start('nginx', ['nginx', '-p', self.dir, '-c', os.path.join(self.dir, 'nginx.conf'),
                                     '-e', os.path.join(self.dir, 'nginx-error.log')], signal.SIGTERM)
        self.wait_until_answers(nginx, self.peer_port, '/hello')

    def enable_vassal(self):
        """What Piku's spawn_worker ends with: the worker's config copied into the emperor's
        directory, which starts the vassal, or reloads it when its config's time changes."""
        shutil.copyfile(os.path.join(self.dir, 'uwsgi.ini'), os.path.join(self.dir, 'uwsgi-enabled', 'bench.ini'))

    # Load

    def client_args(self, args):
        """wrk's command line, in the client's cgroup under --client-weight."""
        return self.client.wrap(args) if self.client else args

    def wrk(self, port, path, threads, connections, duration, headers=()):
        args = ['wrk', f'-t{threads}', f'-c{connections}', f'-d{duration}s', f'--timeout={self.timeout}s',
                '-s', os.path.join(self.dir, 'report.lua')] + [f'-H{header}' for header in headers] + [f'http://127.0.0.1:{port}{path}']
        result = subprocess.run(self.client_args(args), capture_output=True, text=True, timeout=duration + 60)
        last = result.stdout.strip().splitlines()[-1:] if result.returncode == 0 else []
        if not last or not last[0].startswith('{'):
            sys.exit(f'{" ".join(args)} failed:\n{result.stdout}{result.stderr}')
        raw = json.loads(last[0])
        seconds = raw['duration_us'] / 1e6
        return {
            # What counts is answers: a quick 502 from a full backlog is not a served call.
            'requests_per_s': (raw['requests'] - raw['status']) / seconds,
            'all_responses_per_s': raw['requests'] / seconds,
            'p50_ms': raw['p50_us'] / 1000, 'p99_ms': raw['p99_us'] / 1000,
            'requests': raw['requests'], 'non_2xx_3xx': raw['status'],
            'socket_errors': {key: raw[key] for key in ('connect', 'read', 'write', 'timeout')},
        }

    def settle(self, port, path):
        """Waits for calls that a finished wrk left queued (its clients gone, the calls not)
        to drain: one call more, answered after them. Otherwise the next run pays for them."""
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
        connection.request('GET', path)
        connection.getresponse().read()
        connection.close()

    def measure(self, port, path, threads, connections):
        self.settle(port, path)
        self.wrk(port, path, threads, connections, self.warmup)
        self.settle(port, path)
        return self.wrk(port, path, threads, connections, self.duration)

    def uwsgi_recycles(self):
        """How often uWSGI's worker has ended so far (max-requests) and been replaced. uWSGI
        2.0 can hang in that exit until its master kills it (worker-reload-mercy, 60 s),
        and the peer answers nothing meanwhile: a stall to show, not to hide."""
        ended = respawned = 0
        with open(os.path.join(self.dir, 'uwsgi.log'), errors='replace') as f:
            for line in f:
                ended += 'The work of process' in line
                respawned += line.startswith('Respawned uWSGI worker')
        return ended, respawned

    def rows(self):
        results = []
        for what, gust_path, peer_path, threads, connections in ROWS:
            gust = self.measure(self.gust_port, gust_path, threads, connections)
            ended_before, _ = self.uwsgi_recycles()
            peer = self.measure(self.peer_port, peer_path, threads, connections)
            ended, respawned = self.uwsgi_recycles()
            peer['uwsgi_worker_recycles'] = ended - ended_before
            peer['uwsgi_worker_hung'] = ended > respawned
            results.append({'what': what, 'wrk': f'-t{threads} -c{connections}', 'gust_path': gust_path,
                            'peer_path': peer_path, 'gust': gust, 'peer': peer,
                            'ratio': gust['requests_per_s'] / peer['requests_per_s'] if peer['requests_per_s'] else None})
        return results


    # Deploys and rollbacks under load

    def gust_deploy(self, version):
        """A code change pushed with the real `git push`, as scripts/bench.py pushes: the
        version the app answers, committed and pushed. Returns the push's wall time."""
        work = os.path.join(self.dir, 'gust-app')
        with open(os.path.join(work, '__init__.py'), 'w') as f:
            f.write(GUST_APP.replace("VERSION = 'v1'", f'VERSION = {version!r}'))
        self.run('git', 'commit', '-q', '-am', version, cwd=work)
        started = time.perf_counter()
        self.run('git', 'push', '-q', os.path.join(self.home, 'repos', 'bench.git'), 'main', cwd=work)
        return time.perf_counter() - started

    def gust_rollback(self):
        started = time.perf_counter()
        self.run(os.path.join(self.bin, 'gust'), 'rollback', 'bench')
        return time.perf_counter() - started

    def peer_deploy(self, version):
        """A code change deployed as Piku deploys one whose requirements.txt did not change:
        the new code in the app's directory (Piku: git reset --hard), then spawn_app with
        PIKU_AUTO_RESTART: the worker's config removed from the emperor's directory and copied
        back, which the emperor sees as a changed config and answers with a graceful reload of
        the vassal. Piku has no rollback: it is the same with the old code."""
        started = time.perf_counter()
        app = os.path.join(self.dir, 'peer-app', 'app.py')
        with open(app + '.new', 'w') as f:
            f.write(WSGI_APP.replace("VERSION = 'v1'", f'VERSION = {version!r}'))
        os.replace(app + '.new', app)
        os.remove(os.path.join(self.dir, 'uwsgi-enabled', 'bench.ini'))
        self.enable_vassal()
        return time.perf_counter() - started

    def deploy_under_load(self, port, path, deploy, rollback, health):
        """wrk -t2 -c64 on the version path for about --deploy-hold × 3 s plus the two switches:
        hold, deploy v2, hold once v2 answers, roll back to v1, hold once v1 answers again,
        then wrk is stopped with SIGINT (it prints its summary and runs done())."""
        self.settle(port, path)
        self.wrk(port, path, 2, 64, self.warmup)
        self.settle(port, path)
        report = os.path.join(self.dir, 'deploy.lua')
        with open(report, 'w') as f:
            f.write(WRK_DEPLOY_REPORT)
        args = ['wrk', '-t2', '-c64', '-d300s', f'--timeout={self.timeout}s', '-s', report,
                f'http://127.0.0.1:{port}{path}']
        probe = Probe(port, path)
        probe.start()
        # The server's own answer, no app involved (gustd's health, nginx's return 200): whether a
        # slow spell is the app's processes or the server (or the whole machine) standing still.
        health_probe = Probe(port, health)
        health_probe.start()
        load_started = time.time()
        wrk = subprocess.Popen(self.client_args(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        result = {}
        try:
            time.sleep(self.deploy_hold)
            deploy_started = time.time()
            result['deploy_command_s'] = deploy('v2')
            result['deploy_s'] = probe.wait_for('v2', deploy_started)
            if result['deploy_s'] is None:
                sys.exit(f'v2 never answered on {path} within 120 s of its deploy')
            time.sleep(self.deploy_hold)
            rollback_started = time.time()
            result['rollback_command_s'] = rollback()
            result['rollback_s'] = probe.wait_for('v1', rollback_started)
            if result['rollback_s'] is None:
                sys.exit(f'v1 never answered on {path} again within 120 s of the rollback')
            time.sleep(self.deploy_hold)
            load_ended = time.time()
            wrk.send_signal(signal.SIGINT)
            stdout, stderr = wrk.communicate(timeout=60)
        finally:
            if wrk.poll() is None:
                wrk.kill()
                wrk.wait()
            probe.stop()
            health_probe.stop()
        last = stdout.strip().splitlines()[-1:]
        if not last or not last[0].startswith('{'):
            sys.exit(f'{" ".join(args)} failed:\n{stdout}{stderr}')
        raw = json.loads(last[0])

        def since(moment):  # seconds after the deploy started
            return round(moment - deploy_started, 3)

        seen = {key: {'count': value['count'], 'first_s': since(value['first']), 'last_s': since(value['last'])}
                for key, value in raw['responses'].items()}
        # The run in five parts (wall times), each switch from its start to its new answer.
        phases = [('before the deploy', load_started, deploy_started),
                  ('deploy → v2 answers', deploy_started, deploy_started + result['deploy_s']),
                  ('v2 live', deploy_started + result['deploy_s'], rollback_started),
                  ('rollback → v1 answers', rollback_started, rollback_started + result['rollback_s']),
                  ('v1 again', rollback_started + result['rollback_s'], load_ended)]
        by_phase = [{'phase': name, 'from_s': since(start), 'to_s': since(end), 'responses': {}} for name, start, end in phases]
        for bucket, count in raw['tenths'].items():
            key, tenths = bucket.rsplit('|', 1)
            at = int(tenths) / 10
            index = next((i for i, (_, start, end) in enumerate(phases) if at < end), len(phases) - 1)
            by_phase[index]['responses'][key] = by_phase[index]['responses'].get(key, 0) + count
        self.phases = phases
        slowest = sorted(probe.samples, key=lambda sample: -sample[1])[:3]
        health_slowest = sorted(health_probe.samples, key=lambda sample: -sample[1])[:3]
        result.update({
            'wrk': ' '.join(args[1:5]), 'duration_s': raw['duration_us'] / 1e6, 'requests': raw['requests'],
            'non_2xx_3xx': raw['status'],
            'socket_errors': {key: raw[key] for key in ('connect', 'read', 'write', 'timeout')},
            'p50_ms': raw['p50_us'] / 1000, 'p99_ms': raw['p99_us'] / 1000, 'max_ms': raw['max_us'] / 1000,
            # Times in seconds after the deploy started; the rollback started at rollback_at_s.
            'load_started_s': since(load_started), 'rollback_at_s': since(rollback_started),
            'answers': {key: value for key, value in seen.items() if not key.startswith('status ')},
            'failures': {key.split()[1]: value for key, value in seen.items() if key.startswith('status ')},
            'phases': by_phase,
            'probe': {'calls': len(probe.samples), 'failed': sum(1 for sample in probe.samples if sample[2] != 200),
                      'max_ms': slowest[0][1] * 1000 if slowest else None,
                      'slowest': [{'ms': took * 1000, 'at_s': since(started), 'status': status}
                                  for started, took, status, _ in slowest]},
            'health_probe': {'path': health, 'calls': len(health_probe.samples),
                             'failed': sum(1 for sample in health_probe.samples if sample[2] != 200),
                             'slowest': [{'ms': took * 1000, 'at_s': since(started), 'status': status}
                                         for started, took, status, _ in health_slowest]},
        })
        return result

    def gust_calls(self, path):
        """The calls to path in gustd's access log (stdout, gustd.log): (arrived, ms, status, release)."""
        calls = []
        with open(os.path.join(self.dir, 'gustd.log'), errors='replace') as f:
            for line in f:
                if f' path={path} ' not in line:
                    continue
                stamp, _, rest = line.partition(' ')
                fields = dict(part.split('=', 1) for part in rest.split() if '=' in part)
                try:
                    arrived = datetime.datetime.fromisoformat(stamp.replace('Z', '+00:00')).timestamp()
                    calls.append((arrived, float(fields['ms']), fields['status'], fields['release']))
                except (KeyError, ValueError):
                    continue
        return calls

    def peer_calls(self, path):
        """The calls to path in nginx's access log (the bench's `timed` format): (arrived, ms, status, '-')."""
        calls = []
        with open(os.path.join(self.dir, 'nginx-access.log'), errors='replace') as f:
            for line in f:
                parts = line.split(' ', 3)
                if len(parts) < 4 or f' {path} ' not in parts[3]:
                    continue
                try:
                    ended, took = float(parts[0]), float(parts[2])
                except ValueError:
                    continue
                calls.append((ended - took, took * 1000, parts[1], '-'))
        return calls

    def calls_by_phase(self, calls, deploy_started):
        """The server's own account of each call in the run's phases (self.phases, from the run
        just made): how many, by status, how many took 50 ms or more, the slowest (when it arrived,
        in s after the deploy started); and the same over the whole run, with the slowest five."""
        first, last = self.phases[0][1], self.phases[-1][2]
        calls = [call for call in calls if first <= call[0] <= last]

        def summary(part):
            statuses, releases = {}, {}
            for _, _, status, release in part:
                statuses[status] = statuses.get(status, 0) + 1
                releases[release] = releases.get(release, 0) + 1
            slowest = sorted(part, key=lambda call: -call[1])[:5]
            return {'calls': len(part), 'by_status': statuses, 'by_release': releases,
                    'at_least_50_ms': sum(1 for call in part if call[1] >= 50),
                    'slowest': [{'ms': ms, 'at_s': round(arrived - deploy_started, 3), 'status': status, 'release': release}
                                for arrived, ms, status, release in slowest]}

        phases = []
        for index, (name, start, end) in enumerate(self.phases):
            part = [call for call in calls if start <= call[0] < end or (index == len(self.phases) - 1 and call[0] == end)]
            phases.append(dict(summary(part), phase=name))
        return dict(summary(calls), phases=phases)

    def quiet_switches(self, port, path, deploy, rollback):
        """The same deploy (of a version of its own) and rollback with no load but the probe:
        the times the loaded ones compare with, on the same machine at the same moment."""
        probe = Probe(port, path)
        probe.start()
        try:
            started = time.time()
            deploy('v2-quiet')
            live = probe.wait_for('v2-quiet', started)
            time.sleep(1)
            started = time.time()
            rollback()
            back = probe.wait_for('v1', started)
        finally:
            probe.stop()
        if live is None or back is None:
            sys.exit(f'without load, v2-quiet or v1 again never answered on {path} within 120 s')
        return {'deploy_s': live, 'rollback_s': back}

    def deploys(self):
        """The same deploy and rollback under the same load on both sides, Gust first; then
        the same without load, on each side."""
        gust = self.deploy_under_load(self.gust_port, '/apps/bench/version', self.gust_deploy, self.gust_rollback,
                                      '/apps/bench/_/health')
        time.sleep(0.2)  # gustd writes its access log every 50 ms
        gust['access_log'] = self.calls_by_phase(self.gust_calls('/apps/bench/version'), self.phases[1][1])
        ended_before, _ = self.uwsgi_recycles()
        peer = self.deploy_under_load(self.peer_port, '/version', self.peer_deploy, lambda: self.peer_deploy('v1'), '/health')
        time.sleep(0.2)
        peer['access_log'] = self.calls_by_phase(self.peer_calls('/version'), self.phases[1][1])
        ended, respawned = self.uwsgi_recycles()
        peer['uwsgi_worker_recycles'] = ended - ended_before
        peer['uwsgi_worker_hung'] = ended > respawned
        gust['without_load'] = self.quiet_switches(self.gust_port, '/apps/bench/version', self.gust_deploy, self.gust_rollback)
        peer['without_load'] = self.quiet_switches(self.peer_port, '/version', self.peer_deploy, lambda: self.peer_deploy('v1'))
        return {'gust': gust, 'peer': peer}

def first_line(*args):
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except OSError as error:
        return f'not found ({error.strerror})'
    return (result.stdout.strip() or result.stderr.strip()).splitlines()[0]


def machine():
    model = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')), platform.machine())
    return {'nproc': os.cpu_count(), 'model': model, 'load_average': [round(x, 2) for x in os.getloadavg()],
            'kernel': platform.release(), 'user': getpass.getuser()}


def versions():
    return {'nginx': first_line('nginx', '-v'), 'uwsgi': first_line('uwsgi', '--version'),
            'wrk': first_line('wrk', '-v'), 'python3': f"{first_line('python3', '--version')} ({shutil.which('python3')})"}


def errors(side):
    socket_errors = sum(side['socket_errors'].values())
    return f"{side['non_2xx_3xx']} / {socket_errors}"


def print_markdown(report):
    m = report['machine_before']
    print(f"Machine: {m['nproc']} × {m['model']}, kernel {m['kernel']}, load average "
          f"{' '.join(map(str, m['load_average']))} before, {' '.join(map(str, report['machine_after']['load_average']))} after")
    print('Versions: ' + '; '.join(report['versions'].values()))
    print(f"Gust instances: {report['gust_instances']}, uWSGI processes: {report['gust_instances']}; "
          f"{report['duration_s']} s per measurement after a {report['warmup_s']} s warm-up; "
          f"wrk --timeout {report['timeout_s']}s"
          + (f"; wrk in a cpu cgroup of its own, cpu.shares {report['client_cpu_shares']} (--client-weight "
             f"{report['client_weight']})" if report.get('client_weight') else '; wrk in the bench\'s session')
          + (f"; gustd {' '.join(report['gustd_args'])}" if report.get('gustd_args') else '') + '\n')
    if 'rows' in report:
        print_rows(report)
    if 'deploys' in report:
        print_deploys(report['deploys'])
    for name, text in report['configs'].items():
        print(f'\n{name}:\n```\n{text}```')


def print_rows(report):
    print('req/s counts 2xx and 3xx answers only; errors are responses that were not 2xx or 3xx / socket errors '
          '(connect, read, write, timeout).\n')
    print('| What | wrk | Gust req/s | Gust p50 / p99 | Gust errors '
          '| nginx + uWSGI req/s | nginx + uWSGI p50 / p99 | nginx + uWSGI errors | Gust / peer |')
    print('|---|---|---|---|---|---|---|---|---|')
    for row in report['rows']:
        g, p = row['gust'], row['peer']
        ratio = f"{row['ratio']:.2f}" if row['ratio'] is not None else '—'
        print(f"| {row['what']} | `{row['wrk']}` | {g['requests_per_s']:,.0f} | {g['p50_ms']:.2f} / {g['p99_ms']:.2f} ms "
              f"| {errors(g)} | {p['requests_per_s']:,.0f} | {p['p50_ms']:.2f} / {p['p99_ms']:.2f} ms | {errors(p)} | {ratio} |")
    for row in report['rows']:
        p = row['peer']
        if p['uwsgi_worker_recycles']:
            state = ('and was still hanging in its exit at the end: the peer answered nothing from then on '
                     "until uWSGI's master kills it (worker-reload-mercy, 60 s)") if p['uwsgi_worker_hung'] else 'and was replaced'
            print(f"\nuWSGI's worker reached max-requests {p['uwsgi_worker_recycles']} time(s) during "
                  f"{row['what']} `{row['wrk']}`, {state}.")


def print_deploys(d):
    g, p = d['gust'], d['peer']

    def ratio(a, b):
        return f'{a / b:.2f}' if a is not None and b else '—'

    def failures(side):
        text = '; '.join(f"{count['count']} × {status} at {count['first_s']:+.2f}…{count['last_s']:+.2f} s"
                         for status, count in side['failures'].items())
        return text or 'none'

    def answers(side):
        return ', '.join(f"{body} {seen['count']:,} ({seen['first_s']:+.2f}…{seen['last_s']:+.2f} s)"
                         for body, seen in sorted(side['answers'].items()))

    def slowest(side, probe='probe'):
        return ', '.join(f"{call['ms']:.1f} ms at {call['at_s']:+.2f} s" + ('' if call['status'] == 200 else f" ({call['status']})")
                         for call in side[probe]['slowest'])

    print('\nDeploys and rollbacks under load: wrk on the version handler, a code change deployed and rolled back '
          'during the run (times in s after the deploy started; the rollback started at '
          f"Gust {g['rollback_at_s']:+.2f} s, peer {p['rollback_at_s']:+.2f} s).\n")
    print('| | Gust | nginx + uWSGI, deployed as Piku deploys | Gust / peer |')
    print('|---|---|---|---|')
    rows = [
        ('wrk', f"`{g['wrk']}`, {g['duration_s']:.1f} s", f"`{p['wrk']}`, {p['duration_s']:.1f} s", '—'),
        ('requests', f"{g['requests']:,}", f"{p['requests']:,}", ratio(g['requests'], p['requests'])),
        ('non-2xx / socket errors', errors(g), errors(p), '—'),
        ('non-2xx, by status and when', failures(g), failures(p), '—'),
        ('latency p50 / p99 / max', f"{g['p50_ms']:.2f} / {g['p99_ms']:.2f} / **{g['max_ms']:.1f}** ms",
         f"{p['p50_ms']:.2f} / {p['p99_ms']:.2f} / **{p['max_ms']:.1f}** ms", ratio(g['max_ms'], p['max_ms']) + ' (max)'),
        ('answers by version (first…last seen)', answers(g), answers(p), '—'),
        ('deploy → new version answers', f"{g['deploy_s']:.2f} s (`git push` {g['deploy_command_s']:.2f} s)",
         f"{p['deploy_s']:.2f} s (code and config written in {p['deploy_command_s'] * 1000:.1f} ms)", '—'),
        ('rollback → old version answers', f"{g['rollback_s']:.2f} s (`gust rollback` {g['rollback_command_s']:.2f} s)",
         f"{p['rollback_s']:.2f} s (the old code, the same way)", '—'),
        ('probe: calls, failed, slowest', f"{g['probe']['calls']:,}, {g['probe']['failed']}, {slowest(g)}",
         f"{p['probe']['calls']:,}, {p['probe']['failed']}, {slowest(p)}", '—'),
    ]
    if 'health_probe' in g:  # (not in reports made before it was measured)
        rows.append(('health probe (gustd `/_/health`, nginx `return 200`): calls, failed, slowest',
                     f"{g['health_probe']['calls']:,}, {g['health_probe']['failed']}, {slowest(g, 'health_probe')}",
                     f"{p['health_probe']['calls']:,}, {p['health_probe']['failed']}, {slowest(p, 'health_probe')}", '—'))
    if 'without_load' in g:  # (not in reports made before it was measured)
        rows.insert(-1, ('the same without load: deploy, rollback',
                         f"{g['without_load']['deploy_s']:.2f} s, {g['without_load']['rollback_s']:.2f} s",
                         f"{p['without_load']['deploy_s']:.2f} s, {p['without_load']['rollback_s']:.2f} s", '—'))
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    for name, side, log in (('Gust', g, "gustd's access log"), ('nginx + uWSGI', p, "nginx's access log")):
        print(f"\n{name} by phase (wrk's responses by body or status; the calls as {log} times them, "
              'from arrival to answer):\n')
        print('| phase | s after the deploy started | wrk: responses | calls logged | by status | 50 ms or more | slowest |')
        print('|---|---|---|---|---|---|---|')
        for counted, logged in zip(side['phases'], side['access_log']['phases']):
            responses = ', '.join(f'{key} {count:,}' for key, count in sorted(counted['responses'].items())) or '—'
            statuses = ', '.join(f'{status} {count:,}' for status, count in sorted(logged['by_status'].items())) or '—'
            slowest = f"{logged['slowest'][0]['ms']:.1f} ms" if logged['slowest'] else '—'
            print(f"| {counted['phase']} | {counted['from_s']:+.2f}…{counted['to_s']:+.2f} | {responses} | {logged['calls']:,} "
                  f"| {statuses} | {logged['at_least_50_ms']:,} | {slowest} |")
        a = side['access_log']
        print(f"\nSlowest calls in {log}: " + ', '.join(
            f"{call['ms']:.1f} ms ({call['status']}" + ('' if call['release'] == '-' else f", {call['release']}")
            + f") arrived at {call['at_s']:+.2f} s" for call in a['slowest'])
              + ('. 499: a call whose client left, as wrk\'s do when it stops.' if '499' in a['by_status'] else '.'))
    if p.get('uwsgi_worker_recycles'):
        print(f"\nuWSGI's worker reached max-requests {p['uwsgi_worker_recycles']} time(s) during the deploys"
              + (', and was still hanging in its exit at the end.' if p['uwsgi_worker_hung'] else '.'))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='directory with gust, gust-receive and gustd (a release build)')
    parser.add_argument('--duration', type=int, default=5, help='seconds of load per measurement (default 5)')
    parser.add_argument('--instances', type=int, default=4,
                        help='Gust instances (gust scale --min N --max N) and uWSGI processes (default 4)')
    parser.add_argument('--warmup', type=int, default=1, help='seconds of load before each measurement (default 1)')
    parser.add_argument('--timeout', type=int, default=10,
                        help="wrk's time limit of a call; a slower call is a timeout, not a latency (default 10)")
    parser.add_argument('--uwsgi-max-requests', type=int, default=1024,
                        help="uWSGI's max-requests: Piku's default 1024, which a Piku user changes with "
                             'UWSGI_MAX_REQUESTS; 0 never recycles the worker')
    parser.add_argument('--only', choices=['serving', 'deploys'],
                        help='run one part: the serving rows (req/s and latency), or the deploys (a deploy and a '
                             'rollback under wrk -t2 -c64 on each side); both by default')
    parser.add_argument('--deploy-hold', type=float, default=3,
                        help='deploys: seconds of load before the deploy, between the new version answering and '
                             'the rollback, and after the old one answers again (default 3)')
    parser.add_argument('--gustd-arg', action='append', default=[], metavar='ARG',
                        help="one more argument for gustd, repeatable; e.g. --gustd-arg=--cpu-weight --gustd-arg=off "
                             "to measure gustd left in its session's share of the CPU")
    parser.add_argument('--client-weight', type=int, metavar='N',
                        help='run every wrk (both sides, warm-ups too) in a cgroup v1 cpu cgroup of its own, '
                             '/sys/fs/cgroup/cpu/gust-bench-client-PID with cpu.shares N*1024/100, removed at the end: '
                             "a measurement aid that keeps wrk's own wait for a CPU out of its latencies; off by "
                             'default (wrk in the bench\'s session, as a published run measures)')
    parser.add_argument('--keep', action='store_true', help='keep the scratch directory and its logs')
    parser.add_argument('--json', action='store_true', help='print the results as JSON')
    args = parser.parse_args()
    for tool in ('nginx', 'uwsgi', 'wrk'):
        if shutil.which(tool) is None:
            sys.exit(f'{tool} is not installed: run scripts/install-deps.sh --bench')
    for executable in ('gust', 'gust-receive', 'gustd'):
        if not os.access(os.path.join(args.bin, executable), os.X_OK):
            sys.exit(f'no {executable} in {args.bin}: pass the bin directory of a build (swift build -c release --show-bin-path)')

    if args.client_weight is not None and args.client_weight <= 0:
        sys.exit('--client-weight: a weight above 0, e.g. 400')

    client = ClientCgroup(args.client_weight) if args.client_weight is not None else None
    try:
        report = run(args, client)
    finally:
        if client:
            client.remove()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_markdown(report)


def run(args, client):
    """Both servers started, measured and stopped by PID; the report. client: the ClientCgroup every wrk runs in, or None."""
    bench = PeerBench(os.path.abspath(args.bin), args.duration, args.warmup, args.timeout, args.uwsgi_max_requests,
                      args.instances, args.deploy_hold, args.gustd_arg, client)
    report = {'machine_before': machine(), 'versions': versions(), 'duration_s': args.duration, 'warmup_s': args.warmup,
              'timeout_s': args.timeout, 'gustd_args': args.gustd_arg, 'client_weight': args.client_weight,
              'client_cpu_shares': client.shares if client else None}
    keep = False
    try:
        bench.start_gust()
        bench.start_peer()
        if args.only != 'deploys':
            report['rows'] = bench.rows()
        if args.only != 'serving':
            report['deploys'] = bench.deploys()
    except BaseException:
        keep = True  # the logs say what went wrong
        raise
    finally:
        bench.stop_all()
        keep = keep or args.keep
        if keep:
            print(f'logs kept in {bench.dir}', file=sys.stderr)
        else:
            shutil.rmtree(bench.dir, ignore_errors=True)
    report.update(machine_after=machine(), gust_instances=bench.instances, configs=bench.configs)
    return report


if __name__ == '__main__':
    main()
