#!/usr/bin/env python3
"""TLS termination: gustd's own HTTPS (--https, swift-nio-ssl) beside nginx terminating TLS
in front of the same gustd, for the same app, the same certificate, TLS 1.3, HTTP/1.1.

Run with `make bench` (a release build) or `scripts/bench_tls.py --bin DIR`. Everything runs in a
throwaway directory on free loopback ports and is removed at the end; every process started here
is stopped by its PID (bench_peers.Service).

The two sides, one gustd serving both:
  gustd  --https with --tls-cert/--tls-key: an openssl-made ECDSA P-256 certificate for
         *.gust.test; the app's trivial handler, GET /hello with Host bench.gust.test.
  nginx  `worker_processes auto`, `ssl_protocols TLSv1.3`, the same certificate and key,
         proxying to gustd's HTTP port over kept-alive upstream connections (what an admin
         would put in front of gustd for TLS): the same handler, one hop more.

Measured, each row on both sides in the same run one after the other, each after a warm-up:
  throughput   wrk -t2 -c16 and -t2 -c64 over HTTPS, keep-alive (one handshake per connection):
               requests answered 2xx/3xx per second, p50/p99.
  handshakes   `openssl s_time -new -tls1_3` in N parallel processes (--handshake-clients):
               full TLS 1.3 handshakes per second, no request on them (the cost of a new
               connection), counted by s_time and timed here by the wall clock.
Ratios are gustd / nginx (above 1: gustd does more per second).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_peers  # noqa: E402  (Service, free_port, machine, first_line, WRK_REPORT)

APP = '''import gust


@gust.handler('hello', methods=['GET'])
def hello(request):
    return 'hello\\n'
'''

NGINX_CONF = '''{user}worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/nginx-temp/body;
  proxy_temp_path {dir}/nginx-temp/proxy;
  fastcgi_temp_path {dir}/nginx-temp/fastcgi;
  uwsgi_temp_path {dir}/nginx-temp/uwsgi;
  scgi_temp_path {dir}/nginx-temp/scgi;
  upstream gustd {{
    server 127.0.0.1:{gust_port};
    keepalive 128;
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name bench.gust.test;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    keepalive_requests 1000000;
    location / {{
      proxy_pass http://gustd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
'''

ROWS = [(2, 16), (2, 64)]


class TLSBench:
    def __init__(self, bin_dir, duration, warmup, instances, handshake_clients, gustd_args=()):
        self.bin, self.duration, self.warmup, self.gustd_args = bin_dir, duration, warmup, list(gustd_args)
        self.instances, self.handshake_clients = instances, handshake_clients
        self.dir = tempfile.mkdtemp(prefix='gust-bench-tls.')
        self.home = os.path.join(self.dir, 'home')
        self.env = dict(os.environ, GUST_HOME=self.home, GIT_CONFIG_NOSYSTEM='1', GIT_CONFIG_GLOBAL='/dev/null',
                        GIT_AUTHOR_NAME='Bench', GIT_AUTHOR_EMAIL='bench@gust.invalid',
                        GIT_COMMITTER_NAME='Bench', GIT_COMMITTER_EMAIL='bench@gust.invalid')
        self.services = []
        self.cert = os.path.join(self.dir, 'bench.crt')
        self.key = os.path.join(self.dir, 'bench.key')
        self.nginx_conf = ''
        with open(os.path.join(self.dir, 'report.lua'), 'w') as f:
            f.write(bench_peers.WRK_REPORT)

    def run(self, *args, cwd=None):
        result = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            sys.exit(f'{" ".join(args)} failed:\n{result.stdout}{result.stderr}')
        return result.stdout

    def start(self, name, args, stop_signal, env=None):
        service = bench_peers.Service(name, args, os.path.join(self.dir, f'{name}.log'), stop_signal, env)
        self.services.append(service)
        return service

    def stop_all(self):
        for service in reversed(self.services):
            service.stop()

    def certificate(self):
        self.run('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                 '-days', '2', '-keyout', self.key, '-out', self.cert, '-subj', '/CN=bench.gust.test',
                 '-addext', 'subjectAltName=DNS:*.gust.test,DNS:bench.gust.test')

    def read_port(self, name, service):
        path = os.path.join(self.home, 'run', name)
        deadline = time.monotonic() + 30
        while not (os.path.exists(path) and open(path).read().strip()):
            if not service.running() or time.monotonic() > deadline:
                sys.exit(f'{service.name} did not write {name}; see {service.log}')
            time.sleep(0.05)
        return int(open(path).read().strip().rsplit(':', 1)[1])

    def wait_https(self, port, path, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = subprocess.run(['curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', f'https://127.0.0.1:{port}{path}'],
                                    capture_output=True, text=True, timeout=15)
            if result.stdout == '200':
                return
            time.sleep(0.1)
        sys.exit(f'nothing answered https://127.0.0.1:{port}{path}; logs in {self.dir}')

    def start_gust(self):
        os.makedirs(self.home)
        gustd = self.start('gustd', [os.path.join(self.bin, 'gustd'), '--home', self.home, '--http', '127.0.0.1:0',
                                     '--https', '127.0.0.1:0', '--domain', 'gust.test', '--tls-cert', self.cert,
                                     '--tls-key', self.key, '--no-acme', '--access-log', 'off', *self.gustd_args], signal.SIGTERM, self.env)
        self.gust_http = self.read_port('gustd.http', gustd)
        self.gust_https = self.read_port('gustd.https', gustd)
        work = os.path.join(self.dir, 'app')
        os.makedirs(work)
        with open(os.path.join(work, '__init__.py'), 'w') as f:
            f.write(APP)
        self.run(os.path.join(self.bin, 'gust'), 'apps', 'create', 'bench')
        self.run('git', 'init', '-q', '-b', 'main', cwd=work)
        self.run('git', 'add', '-A', cwd=work)
        self.run('git', 'commit', '-q', '-m', 'bench', cwd=work)
        self.run('git', 'push', '-q', os.path.join(self.home, 'repos', 'bench.git'), 'main', cwd=work)
        self.run(os.path.join(self.bin, 'gust'), 'scale', 'bench', '--min', str(self.instances), '--max', str(self.instances))
        self.wait_https(self.gust_https, '/apps/bench/hello')

    def start_nginx(self):
        os.makedirs(os.path.join(self.dir, 'nginx-temp'))
        self.nginx_port = bench_peers.free_port()
        user = ''
        if os.geteuid() == 0:
            import grp
            import pwd
            user = f'user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n'
        self.nginx_conf = NGINX_CONF.format(user=user, dir=self.dir, gust_port=self.gust_http, port=self.nginx_port,
                                            cert=self.cert, key=self.key)
        conf = os.path.join(self.dir, 'nginx.conf')
        with open(conf, 'w') as f:
            f.write(self.nginx_conf)
        self.start('nginx', ['nginx', '-p', self.dir, '-c', conf, '-e', os.path.join(self.dir, 'nginx-error.log')], signal.SIGTERM)
        self.wait_https(self.nginx_port, '/apps/bench/hello')

    def protocol(self, port):
        """What a default client negotiates: the TLS version and cipher both sides are measured with."""
        result = subprocess.run(['openssl', 's_client', '-connect', f'127.0.0.1:{port}', '-servername', 'bench.gust.test', '-brief'],
                                input='', capture_output=True, text=True, timeout=15)
        found = dict(re.findall(r'^(Protocol version|Ciphersuite|Peer signature type): (.*)$', result.stderr, re.M))
        return ', '.join(found.values())

    def wrk(self, port, threads, connections, duration):
        args = ['wrk', f'-t{threads}', f'-c{connections}', f'-d{duration}s', '--timeout=10s', '-H', 'Host: bench.gust.test',
                '-s', os.path.join(self.dir, 'report.lua'), f'https://127.0.0.1:{port}/hello']
        result = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
        last = result.stdout.strip().splitlines()[-1:] if result.returncode == 0 else []
        if not last or not last[0].startswith('{'):
            sys.exit(f'{" ".join(args)} failed:\n{result.stdout}{result.stderr}')
        raw = json.loads(last[0])
        seconds = raw['duration_us'] / 1e6
        return {'requests_per_s': (raw['requests'] - raw['status']) / seconds, 'p50_ms': raw['p50_us'] / 1000,
                'p99_ms': raw['p99_us'] / 1000, 'errors': raw['status'] + raw['connect'] + raw['read'] + raw['write'] + raw['timeout']}

    def handshakes(self, port, duration):
        """Full TLS 1.3 handshakes per second from N parallel `openssl s_time -new` clients."""
        args = ['openssl', 's_time', '-connect', f'127.0.0.1:{port}', '-new', '-tls1_3', '-time', str(duration)]
        started = time.monotonic()
        clients = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(self.handshake_clients)]
        total = 0
        for client in clients:
            out, _ = client.communicate(timeout=duration + 60)
            counts = re.findall(r'^(\d+) connections in [\d.]+s', out, re.M)
            if not counts:
                sys.exit(f'openssl s_time failed:\n{out}')
            total += int(counts[0])
        return {'handshakes_per_s': total / (time.monotonic() - started), 'handshakes': total}

    def measure(self):
        rows = []
        for threads, connections in ROWS:
            side = {}
            for name, port in (('gustd', self.gust_https), ('nginx', self.nginx_port)):
                self.wrk(port, threads, connections, self.warmup)
                side[name] = self.wrk(port, threads, connections, self.duration)
            rows.append({'what': f'HTTPS keep-alive, wrk -t{threads} -c{connections}', 'unit': 'req/s', 'gustd': side['gustd'],
                         'nginx': side['nginx'], 'ratio': side['gustd']['requests_per_s'] / side['nginx']['requests_per_s']})
        side = {}
        for name, port in (('gustd', self.gust_https), ('nginx', self.nginx_port)):
            self.handshakes(port, max(1, self.warmup))
            side[name] = self.handshakes(port, self.duration)
        rows.append({'what': f'new TLS 1.3 connections, {self.handshake_clients} × openssl s_time -new', 'unit': 'handshakes/s',
                     'gustd': side['gustd'], 'nginx': side['nginx'],
                     'ratio': side['gustd']['handshakes_per_s'] / side['nginx']['handshakes_per_s']})
        return rows


def print_markdown(report):
    m = report['machine']
    print(f"Machine: {m['nproc']} × {m['model']}, kernel {m['kernel']}, load average {' '.join(map(str, m['load_average']))} before")
    print('Versions: ' + '; '.join(report['versions'].values()))
    print(f"Negotiated: gustd {report['protocol']['gustd']}; nginx {report['protocol']['nginx']}")
    print(f"{report['duration_s']} s per measurement after a {report['warmup_s']} s warm-up; gustd instances {report['instances']}"
          + (f"; gustd {report['gustd_args']}" if report['gustd_args'] else '') + '\n')
    print('| What | gustd | gustd p50 / p99 | nginx → gustd | nginx p50 / p99 | gustd / nginx |')
    print('|---|---|---|---|---|---|')
    for row in report['rows']:
        g, n = row['gustd'], row['nginx']
        if row['unit'] == 'req/s':
            print(f"| {row['what']} | {g['requests_per_s']:,.0f} req/s ({g['errors']} errors) | {g['p50_ms']:.2f} / {g['p99_ms']:.2f} ms "
                  f"| {n['requests_per_s']:,.0f} req/s ({n['errors']} errors) | {n['p50_ms']:.2f} / {n['p99_ms']:.2f} ms | {row['ratio']:.2f} |")
        else:
            print(f"| {row['what']} | {g['handshakes_per_s']:,.0f} /s | — | {n['handshakes_per_s']:,.0f} /s | — | {row['ratio']:.2f} |")
    print(f"\nnginx.conf:\n```\n{report['nginx_conf']}```")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='directory with gust, gust-receive and gustd (a release build)')
    parser.add_argument('--duration', type=int, default=5, help='seconds of load per measurement (default 5)')
    parser.add_argument('--warmup', type=int, default=1, help='seconds of load before each measurement (default 1)')
    parser.add_argument('--instances', type=int, default=2, help='gustd instances of the app (default 2)')
    parser.add_argument('--handshake-clients', type=int, default=4, help='parallel openssl s_time clients (default 4)')
    parser.add_argument('--gustd-args', default='', help="more arguments for gustd, one string (e.g. '--event-loops 2')")
    parser.add_argument('--json', action='store_true', help='print the results as JSON')
    args = parser.parse_args()
    for tool in ('nginx', 'wrk', 'openssl', 'curl'):
        if shutil.which(tool) is None:
            sys.exit(f'{tool} is not installed: run scripts/install-deps.sh --bench')
    bench = TLSBench(os.path.abspath(args.bin), args.duration, args.warmup, args.instances, args.handshake_clients, args.gustd_args.split())
    report = {'machine': bench_peers.machine(), 'duration_s': args.duration, 'warmup_s': args.warmup, 'instances': args.instances,
              'gustd_args': args.gustd_args,
              'versions': {'nginx': bench_peers.first_line('nginx', '-v'), 'wrk': bench_peers.first_line('wrk', '-v'),
                           'openssl': bench_peers.first_line('openssl', 'version')}}
    keep = False
    try:
        bench.certificate()
        bench.start_gust()
        bench.start_nginx()
        report['protocol'] = {'gustd': bench.protocol(bench.gust_https), 'nginx': bench.protocol(bench.nginx_port)}
        report['rows'] = bench.measure()
    except BaseException:
        keep = True
        raise
    finally:
        bench.stop_all()
        if keep:
            print(f'logs kept in {bench.dir}', file=sys.stderr)
        else:
            shutil.rmtree(bench.dir, ignore_errors=True)
    report['nginx_conf'] = bench.nginx_conf
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_markdown(report)


if __name__ == '__main__':
    main()
