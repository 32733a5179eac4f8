#!/usr/bin/env python3
"""What a page of records costs gustd, for two builds side by side (docs/benchmarks.md, "Record
pages from the stored JSON"): each gustd (its own home and cgroup root, `--sandbox none`) serves
the same app, whose op stores COUNT records of SIZE bytes each; then a client holding the app's
token asks for the first page (`GET /apps/APP/_/records/doc`, up to 100 records or 4 MiB) over
and over, and the time to its last byte and gustd's CPU time per page are taken. The builds take
turns, ROUNDS times, each round PAGES pages; gustd's peak resident memory (VmHWM) is read at the end.

    scripts/bench_record_pages.py ROUNDS BEFORE_BIN_DIR AFTER_BIN_DIR [COUNT [SIZE [PAGES]]]

Each BIN_DIR holds gust, gust-receive and gustd, with buildpacks/ beside it or above it.
"""
import http.client, os, statistics, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench  # noqa: E402
from bench_output_ab import cpu_seconds  # noqa: E402

FILL = '''import gust

@gust.op('fill')
def fill(count=100, size=40000):
    for index in range(count):
        gust.records.save('doc', {'n': index, 'title': 'doc %d' % index, 'tags': ['a', 'b'],
                                  'text': 'lorem "ipsum" \\\\ dolor ' * (size // 22)})
    return count
'''


def peak_kib(pid):
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return 0


def page(port, token):
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request('GET', '/apps/docs/_/records/doc', headers={'X-Auth-Token': token})
        response = connection.getresponse()
        body = response.read()
        took = time.perf_counter() - started
    finally:
        connection.close()
    if response.status != 200:
        sys.exit(f'the page answered {response.status}: {body[:300]!r}')
    return took, len(body)


def main():
    arguments = sys.argv[1:]
    if len(arguments) < 3:
        sys.exit(__doc__)
    rounds, bins = int(arguments[0]), {'before': arguments[1], 'after': arguments[2]}
    count = int(arguments[3]) if len(arguments) > 3 else 100
    size = int(arguments[4]) if len(arguments) > 4 else 40000
    pages = int(arguments[5]) if len(arguments) > 5 else 10
    benches = bench.side_by_side(bins, rounds)
    results = {name: [] for name in benches}
    tokens, sizes = {}, {}
    try:
        for name, b in benches.items():
            b.start_gustd('--sandbox', 'none', '--function-timeout', '300')
            b.push_app('docs', {'__init__.py': FILL})
            b.call('docs', 'fill', f'{{"count": {count}, "size": {size}}}'.encode(), timeout=300)
            tokens[name] = b.gust('tokens', 'create', 'docs').strip().split()[-1]
            _, sizes[name] = page(b.port, tokens[name])  # warm
        order = list(benches)
        for r in range(rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                b = benches[name]
                before = cpu_seconds(b.gustd.pid)
                times = [page(b.port, tokens[name])[0] for _ in range(pages)]
                cpu = (cpu_seconds(b.gustd.pid) - before) / pages
                results[name].append((statistics.median(times), cpu))
                print(f'{name}: page {statistics.median(times) * 1000:.1f} ms, gustd {cpu * 1000:.1f} ms CPU a page', flush=True)
        peaks = {name: peak_kib(b.gustd.pid) for name, b in benches.items()}
    finally:
        bench.stop_side_by_side(benches)
    print(f'\n{count} records of about {size} bytes, a page of {sizes["after"]:,} bytes, {rounds} rounds of {pages} pages, medians:')
    for name, samples in results.items():
        took = statistics.median(s[0] for s in samples) * 1000
        cpu = statistics.median(s[1] for s in samples) * 1000
        print(f'  {name}: a page in {took:.1f} ms, gustd {cpu:.1f} ms of CPU a page, gustd peak RSS {peaks[name] / 1024:.0f} MiB')


if __name__ == '__main__':
    main()
