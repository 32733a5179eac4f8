#!/usr/bin/env python3
"""How many times gustd calls malloc per answered call of the trivial handler, and from where
(issue 11, docs/benchmarks.md, "Fewer allocations per call").

    scripts/bench_mallocs.py --bin DIR [--gustd-args '--event-loops 1'] [--connections 16]
                             [--duration 4] [--stacks N]

gustd from --bin with the bench app pushed and 4 instances (bench_peers.py's side of Gust, in a
throwaway directory removed at the end, every process stopped by its PID). A uprobe on libc's
`malloc` (`perf probe -x LIBC malloc`, added if missing and removed again if added here) is
counted in gustd's process while `wrk -t2 -cN` loads the trivial handler for --duration seconds;
the count is divided by wrk's answers. With --stacks N the probe is recorded with call stacks
instead (`perf record -g`), and the N commonest callers are printed, each as the first three
frames that are not the allocator's, per answered call (perf may lose some of so many samples, and
says so: the count without --stacks is the one to quote). The probe slows gustd several-fold, so
the answers per second it prints are not a measure of speed: the count per call is.
Needs root (uprobes) and perf (Debian: `linux-perf`), which `make bench` does not install: a
diagnostic, as bench_syscalls.py is.
"""
import argparse, collections, os, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling scripts
import bench_peers as peers  # noqa: E402

EVENT = 'probe_libc:malloc'
# Frames of the allocator and the standard library's containers: a malloc is credited to the
# first frame past them, the code that asked for the memory.
ALLOCATOR = re.compile(
    r'^(malloc|__GI___libc_malloc|swift_slowAlloc|swift_allocObject|swift_allocBox|swift::|_swift_|swift_|__swift|'
    r'(specialized )?(static )?(_ContiguousArrayBuffer|ContiguousArray|_ArrayBuffer|_allocateUninitializedArray|'
    r'_allocateStringStorage|__StringStorage|_StringGuts|String\.init|ManagedBuffer|_NativeDictionary|_DictionaryStorage)|'
    r'\[unknown\])')


def libc_path():
    out = subprocess.run(['ldd', '/bin/true'], capture_output=True, text=True).stdout
    found = re.search(r'libc\.so\.6 => (\S+)', out)
    return found.group(1) if found else '/lib/x86_64-linux-gnu/libc.so.6'


def ensure_probe():
    """True if the probe was added here (and is to be removed at the end)."""
    listed = subprocess.run(['perf', 'probe', '-l'], capture_output=True, text=True).stdout
    if EVENT in listed:
        return False
    subprocess.run(['perf', 'probe', '-q', '-x', libc_path(), 'malloc'], check=True)
    return True


def callers(script_text, depth=3):
    """Samples per caller chain from `perf script` text (demangled)."""
    counts, frames = collections.Counter(), []
    for line in script_text.splitlines() + ['']:
        if line.strip():
            frames.append(line.strip())
            continue
        names = [re.sub(r'^(specialized |partial apply for |merged |outlined )+', '',
                        f.split(' ', 1)[-1].rsplit(' (', 1)[0].rsplit('+0x', 1)[0])[:90] for f in frames[1:]]
        own = [name for name in names if not ALLOCATOR.match(name)]
        if frames:
            counts[' <- '.join(own[:depth])] += 1
        frames = []
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bin', required=True, help='the gustd (and gust) to measure')
    parser.add_argument('--gustd-args', default='--event-loops 1', help="options for gustd (default '--event-loops 1')")
    parser.add_argument('--connections', type=int, default=16)
    parser.add_argument('--duration', type=int, default=4)
    parser.add_argument('--stacks', type=int, default=0, help='print the N commonest callers of malloc')
    args = parser.parse_args()
    added = ensure_probe()
    try:
        with peers.started(args.bin, args.duration, args.gustd_args) as bench, tempfile.TemporaryDirectory() as scratch:
            gustd = next(s.process.pid for s in bench.services if s.name == 'gustd')
            url = f'http://127.0.0.1:{bench.gust_port}/apps/bench/hello'
            wrk = ['wrk', '-t2', f'-c{args.connections}']
            subprocess.run(wrk + ['-d2s', url], capture_output=True)  # warm-up
            data = os.path.join(scratch, 'perf.data')
            watch = (['perf', 'record', '-e', EVENT, '-g', '-o', data] if args.stacks else ['perf', 'stat', '-e', EVENT]) + ['-p', str(gustd)]
            watcher = subprocess.Popen(watch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(0.5)
                load = subprocess.run(wrk + [f'-d{args.duration}s', url], capture_output=True, text=True).stdout
                time.sleep(0.5)
            finally:
                watcher.send_signal(2)  # perf writes what it has and exits; stopped by its PID whatever happened
                _, err = watcher.communicate(timeout=120)
            answers = int(re.search(r'(\d+) requests in', load).group(1))
            if args.stacks:
                text = subprocess.run(f'perf script -i {data} | swift demangle --simplified', shell=True,
                                      capture_output=True, text=True).stdout
                counts = callers(text)
                if not counts:
                    sys.exit('perf recorded no samples of the probe: run again')
                print(f'{sum(counts.values()) / answers:.1f} mallocs per answered call ({answers} answers)')
                for chain, count in counts.most_common(args.stacks):
                    print(f'{count / answers:6.2f}  {chain}')
            else:
                count = int(re.search(r'([\d,]+)\s+' + re.escape(EVENT), err).group(1).replace(',', ''))
                print(f'{count / answers:.1f} mallocs per answered call ({count} in {answers} answers)')
    finally:
        if added:
            subprocess.run(['perf', 'probe', '-q', '-d', EVENT])


if __name__ == '__main__':
    main()
