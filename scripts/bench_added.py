#!/usr/bin/env python3
"""What the front server adds to a call: gustd beside nginx in front of uWSGI (issue 11: what
gustd adds, p50, under 0.1 ms; docs/benchmarks.md, "What the front adds, beside nginx").

    scripts/bench_added.py --bin DIR [--rounds 6] [--calls 2000] [--gustd-args ARGS] [--post [--op] [--two-writes]]
    scripts/bench_added.py --bin DIR --private [--rounds 6] [--calls 2000] [--gustd-args ARGS]

The servers of bench_peers.py with one instance and one uWSGI process (gustd from --bin with the
bench app pushed by the real `git push`; nginx with Piku's site in front of uWSGI on its Unix
socket), started in a throwaway directory, stopped by PID at the end and the directory removed.
Each round, in turn (the order rotating), --calls sequential calls of the trivial handler after
200 warm-up calls, one client (Python, the same for every row):
  gust direct     keep-alive HTTP on the instance's Unix socket
  through gustd   keep-alive HTTP to gustd, GET /apps/bench/hello
  uWSGI direct    the uwsgi protocol on uWSGI's Unix socket, a connection per call (as nginx
                  calls it: uWSGI closes each one)
  through nginx   keep-alive HTTP to nginx, GET /hello
What each front adds is its p50 less its direct p50, per round; reported as the median over
the rounds with its range. Every answer is read by `http.client`. The client making a
connection per call on the uWSGI side costs it a `socket`, `connect` and `close` that nginx then
makes instead (in C): that much of nginx's own work counts as the client's, so nginx's figure
is, if anything, low.

With --post every row sends `POST /hello` with a small JSON body (`{"n": 1}`) instead, head and
body in one write, as curl, Go's net/http and Node's `request.end(body)` send a small body
(Python's http.client sends them in two).

With --two-writes (and --post) every row sends the head and the body in two writes, as Python's
http.client and urllib3 do.

With --op (and --post) a fifth row calls the bench app's op the same way, `POST
/apps/bench/_/functions/hello` with the same body through gustd, and its p50 is reported beside
the handler's through gustd. (An op has no direct row: the runtime answers `/_gust/ops/…` only
with its instance's secret, which gustd alone holds.)

With --private the rows are gustd's alone, and what is compared is a private app's call with a
public one's (docs/benchmarks.md, "A private app's calls"): the same code pushed a second time as
`priv` (one instance, `gust apps set priv --private`, a token from `gust tokens create priv`),
  public          GET /apps/bench/hello (the lane)
  public, no lane GET /apps/bench/hello? (an empty query: gustd's general path)
  private         GET /apps/priv/hello with X-Auth-Token (the lane, after the token's check)
reported as each row's p50 and the private call's p50 less the public one's, per round; then
`wrk -t2 -c16 -d3s` on the public and the private path in turn, three times each (after a 1 s
warm-up of each), and a private app's req/s as a share of a public one's.
"""
import argparse, http.client, json, os, socket, statistics, struct, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench_peers as peers  # noqa: E402
from profile_call import UnixHTTPConnection, http_call, instance_socket, timed  # noqa: E402


BODY = b'{"n": 1}'


class OneWrite:
    """An http.client connection that sends a request's head and body in one write."""
    def _send_output(self, message_body=None, encode_chunked=False):
        self._buffer.extend((b'', b''))
        head = b'\r\n'.join(self._buffer)
        del self._buffer[:]
        self.send(head + (message_body or b''))


class OneWriteHTTP(OneWrite, http.client.HTTPConnection):
    pass


class OneWriteUnix(OneWrite, UnixHTTPConnection):
    pass


def post_call(connection, path, expected=b'hello'):
    """One POST of BODY to `path` on a keep-alive `connection`, as a function: it exits unless the answer is `expected`."""
    headers = {'Content-Type': 'application/json'}

    def call():
        connection.request('POST', path, body=BODY, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200 or answer != expected:
            sys.exit(f'{path} answered {response.status} {answer[:80]!r}')
    return call


def uwsgi_packet(path, post=False):
    """A uwsgi-protocol request (modifier 0): a 4-byte header, then each variable's length-prefixed key and
    value (then BODY for a POST)."""
    variables = {'REQUEST_METHOD': 'POST' if post else 'GET', 'REQUEST_URI': path, 'PATH_INFO': path, 'QUERY_STRING': '',
                 'SERVER_PROTOCOL': 'HTTP/1.1', 'SERVER_NAME': 'localhost', 'SERVER_PORT': '80',
                 'REMOTE_ADDR': '127.0.0.1', 'HTTP_HOST': 'localhost'}
    if post:
        variables.update({'CONTENT_TYPE': 'application/json', 'CONTENT_LENGTH': str(len(BODY))})
    body = b''.join(struct.pack('<H', len(k)) + k.encode() + struct.pack('<H', len(v)) + v.encode() for k, v in variables.items())
    return struct.pack('<BHB', 0, len(body), 0) + body + (BODY if post else b'')


def uwsgi_call(path, address, post=False):
    packet = uwsgi_packet(path, post)

    def call():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(address)
            connection.sendall(packet)
            # Read by http.client, as the other rows' answers are, so the client's own cost is alike.
            response = http.client.HTTPResponse(connection)
            response.begin()
            body = response.read()
            response.close()
        if response.status != 200 or body != b'hello':
            sys.exit(f'uWSGI answered {response.status} {body[:80]!r}')
    return call


def private_app(bench, name='priv'):
    """The bench app's code pushed again as `name`, one instance, private; a token for it."""
    gust = os.path.join(bench.bin, 'gust')
    bench.run(gust, 'apps', 'create', name)
    bench.run('git', 'push', '-q', os.path.join(bench.home, 'repos', f'{name}.git'), 'main', cwd=os.path.join(bench.dir, 'gust-app'))
    bench.run(gust, 'scale', name, '--min', '1', '--max', '1')
    bench.run(gust, 'apps', 'set', name, '--private')
    token = bench.run(gust, 'tokens', 'create', name).strip()
    deadline = time.monotonic() + 30
    while not [i for i in json.loads(bench.run(gust, 'ps', name, '--json')) if i.get('kind') != 'zygote' and i.get('state') in ('idle', 'busy')]:
        if time.monotonic() > deadline:
            sys.exit(f'no instance of {name} came up within 30 s')
        time.sleep(0.1)
    return token


def refused_without(port, path):
    """Exits unless `path` is refused without the token: else the private row would measure a public call."""
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    connection.request('GET', path)
    response = connection.getresponse()
    response.read()
    if response.status != 403:
        sys.exit(f'{path} answered {response.status} without a token; the app is not private')


def private_rows(bench):
    token = private_app(bench)
    refused_without(bench.gust_port, '/apps/priv/hello')
    return token, {
        'public': http_call(http.client.HTTPConnection('127.0.0.1', bench.gust_port, timeout=30), '/apps/bench/hello', b'hello'),
        'public, no lane': http_call(http.client.HTTPConnection('127.0.0.1', bench.gust_port, timeout=30), '/apps/bench/hello?', b'hello'),
        'private': http_call(http.client.HTTPConnection('127.0.0.1', bench.gust_port, timeout=30), '/apps/priv/hello', b'hello',
                             {'X-Auth-Token': token}),
    }


def rounds(rows, count, calls, what):
    """Each row's p50 per round, the rows' order rotating from round to round."""
    names = list(rows)
    results = {name: [] for name in names}
    for round_ in range(count):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            results[name].append(timed(rows[name], calls)['p50_ms'])
        print(f'round {round_ + 1}: ' + ', '.join(f'{name} {results[name][-1]:.3f}' for name in names) + ' ms at p50',
              flush=True)
    load = os.getloadavg()
    print(f'{count} rounds of {calls} sequential {what} per row; load average {load[0]:.2f}')
    for name in names:
        print(f'  {name:15} p50 {statistics.median(results[name]):.3f} ms (median of rounds)')
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='the gustd (and gust) to measure')
    parser.add_argument('--rounds', type=int, default=6)
    parser.add_argument('--calls', type=int, default=2000, help='calls per row and round (after 200 warm-up calls)')
    parser.add_argument('--gustd-args', default='', help="options added to gustd's command line, such as '--event-loops 1'")
    parser.add_argument('--post', action='store_true', help='POST a small JSON body on every row, head and body in one write')
    parser.add_argument('--op', action='store_true', help="with --post: a row calling the bench app's op through gustd")
    parser.add_argument('--two-writes', action='store_true', help="with --post: the head and the body in two writes, as http.client sends them")
    parser.add_argument('--private', action='store_true', help="a private app's calls beside a public one's, through gustd")
    args = parser.parse_args()
    if (args.op or args.two_writes) and not args.post:
        parser.error('--op and --two-writes go with --post')
    if args.private and args.post:
        parser.error('--private goes without --post')
    if args.private:
        with peers.started(args.bin, 3, args.gustd_args, instances=1) as bench:
            token, rows = private_rows(bench)
            results = rounds(rows, args.rounds, args.calls, 'calls')
            more = [p - q for p, q in zip(results['private'], results['public'])]
            print(f"  a private app's call takes {statistics.median(more):.3f} ms more than a public one's at p50 "
                  f'(range {min(more):.3f} … {max(more):.3f})')
            served = {'public': [], 'private': []}
            for _ in range(3):
                for name, path, headers in [('public', '/apps/bench/hello', ()),
                                            ('private', '/apps/priv/hello', (f'X-Auth-Token: {token}',))]:
                    bench.wrk(bench.gust_port, path, 2, 16, 1, headers)
                    served[name].append(bench.wrk(bench.gust_port, path, 2, 16, 3, headers)['requests_per_s'])
            for name in served:
                print(f'  wrk -t2 -c16 -d3s, {name}: ' + ', '.join(f'{r:,.0f}' for r in served[name]) + ' req/s')
            print(f"  a private app serves {statistics.median(served['private']) / statistics.median(served['public']):.2f} "
                  "of a public one's requests (medians of three)")
        return
    http_class = http.client.HTTPConnection if args.two_writes else OneWriteHTTP
    unix_class = UnixHTTPConnection if args.two_writes else OneWriteUnix
    with peers.started(args.bin, 3, args.gustd_args, instances=1) as bench:
        rows = {
            'gust direct': post_call(unix_class(instance_socket(bench.home)), '/hello'),
            'through gustd': post_call(http_class('127.0.0.1', bench.gust_port, timeout=30), '/apps/bench/hello'),
            'uWSGI direct': uwsgi_call('/hello', os.path.join(bench.dir, 'bench.sock'), post=True),
            'through nginx': post_call(http_class('127.0.0.1', bench.peer_port, timeout=30), '/hello'),
        } if args.post else {
            'gust direct': http_call(UnixHTTPConnection(instance_socket(bench.home)), '/hello', b'hello'),
            'through gustd': http_call(http.client.HTTPConnection('127.0.0.1', bench.gust_port, timeout=30), '/apps/bench/hello', b'hello'),
            'uWSGI direct': uwsgi_call('/hello', os.path.join(bench.dir, 'bench.sock')),
            'through nginx': http_call(http.client.HTTPConnection('127.0.0.1', bench.peer_port, timeout=30), '/hello', b'hello'),
        }
        if args.op:
            rows['op through gustd'] = post_call(
                http_class('127.0.0.1', bench.gust_port, timeout=30), '/apps/bench/_/functions/hello', b'"hello"')
        what = ('POSTs of a small body' + (' in two writes' if args.two_writes else '')) if args.post else 'calls'
        results = rounds(rows, args.rounds, args.calls, what)
        gustd = [t - d for t, d in zip(results['through gustd'], results['gust direct'])]
        nginx = [t - d for t, d in zip(results['through nginx'], results['uWSGI direct'])]
        for name, added in [('gustd', gustd), ('nginx', nginx)]:
            print(f'  {name} adds {statistics.median(added):.3f} ms at p50 (range {min(added):.3f} … {max(added):.3f}); '
                  f'aim for gustd under 0.1 ms')
        if args.op:
            more = [o - h for o, h in zip(results['op through gustd'], results['through gustd'])]
            print(f'  the op through gustd takes {statistics.median(more):.3f} ms more than the handler through gustd at p50 '
                  f'(range {min(more):.3f} … {max(more):.3f})')


if __name__ == '__main__':
    main()
