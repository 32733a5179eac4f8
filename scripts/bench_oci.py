#!/usr/bin/env python3
"""OCI images of releases, measured (docs/benchmarks.md, "OCI images of releases"):

    scripts/bench_oci.py --bin .build/release [--rounds 5]

For each sample app (examples/python-cats, examples/node-reviews), pushed to a throwaway gustd
whose home has a bookworm stack built by `gust stacks build bookworm` (so the push builds on it):

  export            `gust releases export APP v1 --archive` (a fresh process, nothing cached),
                    twice: both times, and whether the two digests are equal
  image size        the stack layer, the slug layer, the whole archive
  podman load       loading the archive into a throwaway podman storage
  cold start        from nothing to the first answer of an op, median and worst of --rounds:
                    the container (`podman run -d` until the op answers 200) beside gustd
                    (gustd started until the same op of the same release answers 200)

The stack is built here, as root (mmdebstrap, a few minutes), unless --stacks-from HOME names a
Gust home that has bookworm@1 already (hard-linked in, as the tests' StackCache does). podman runs with its own containers.conf (cgroupfs, runc, no default ulimits) and storage, both
removed at the end. Every process is started here and stopped by its PID or name. Python 3
standard library only.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APPS = {
    "python-cats": ("/_/functions/food:buy", {"food": "salmon"}),
    "node-reviews": ("/_/functions/hello", {"name": "x"}),
}
CONTAINERS_CONF = '[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\n[containers]\ndefault_ulimits = []\n'


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


def wait_answer(port, path, body, started, limit=120):
    while time.monotonic() - started < limit:
        if answers(port, path, body):
            return time.monotonic() - started
        time.sleep(0.005)
    raise RuntimeError(f"no answer on port {port} within {limit} s")


class Gustd:
    def __init__(self, binaries, home, workdir):
        self.binaries, self.home, self.workdir, self.process = binaries, home, workdir, None
        self.cgroup = f"gust-bench-oci-{os.getpid()}"

    def start(self):
        address = os.path.join(self.home, "run", "gustd.http")
        if os.path.exists(address):
            os.unlink(address)
        log = open(os.path.join(self.workdir, "gustd.log"), "ab")
        self.process = subprocess.Popen([os.path.join(self.binaries, "gustd"), "--home", self.home, "--http", "127.0.0.1:0",
                                         "--cgroup-root", self.cgroup], stdout=log, stderr=log, env=dict(os.environ, PATH=HOST_PATH))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.path.exists(address):
                text = open(address).read().strip()
                if text:
                    self.port = int(text.rsplit(":", 1)[1])
                    return
            time.sleep(0.005)
        raise RuntimeError("gustd did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.remove_cgroups()

    def remove_cgroups(self):
        """gustd leaves its cgroup root (`--cgroup-root`) to whoever made it: here, the bench."""
        for controller in ("memory", "pids", "cpu"):
            root = os.path.join("/sys/fs/cgroup", controller, self.cgroup)
            for directory, _, _ in sorted(os.walk(root), key=lambda entry: -entry[0].count("/")):
                try:
                    os.rmdir(directory)
                except OSError:
                    pass


class Podman:
    def __init__(self, workdir):
        self.directory = os.path.join(workdir, "podman")
        os.makedirs(self.directory)
        with open(os.path.join(self.directory, "containers.conf"), "w") as file:
            file.write(CONTAINERS_CONF)

    def __call__(self, *arguments, check=True):
        d = self.directory
        return subprocess.run(["podman", "--root", f"{d}/root", "--runroot", f"{d}/run", "--tmpdir", f"{d}/tmp", *arguments],
                              env=dict(os.environ, CONTAINERS_CONF=f"{d}/containers.conf"), check=check,
                              capture_output=True, text=True, timeout=600)

    def remove_everything(self):
        self("rm", "-a", "-f", "-t", "2", check=False)
        self("rmi", "-a", "-f", check=False)
        self("system", "reset", "-f", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


def gust(binaries, home, *arguments, timeout=600):
    return subprocess.run([os.path.join(binaries, "gust"), *arguments], env=dict(os.environ, GUST_HOME=home, PATH=HOST_PATH),
                          check=True, capture_output=True, text=True, timeout=timeout)


def install_stack(binaries, home, stacks_from):
    """bookworm@1 in `home`: hard-linked from `stacks_from` (a home that has it) or built by `gust stacks build`."""
    if stacks_from:
        source = os.path.join(os.path.abspath(stacks_from), "stacks", "bookworm@1")
        if not os.path.exists(os.path.join(source, "stack.json")):
            raise RuntimeError(f"{source} is not a built stack")
        os.makedirs(os.path.join(home, "stacks"), exist_ok=True)
        subprocess.run(["cp", "-al", source, os.path.join(home, "stacks", "bookworm@1")], check=True)
        return None
    started = time.monotonic()
    gust(binaries, home, "stacks", "build", "bookworm", timeout=1800)
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="directory holding gust and gustd (a release build)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stacks-from", metavar="HOME", help="a Gust home whose bookworm@1 to hard-link in instead of building one")
    options = parser.parse_args()
    binaries = os.path.abspath(options.bin)
    workdir = tempfile.mkdtemp(prefix="gust-bench-oci-")
    home = os.path.join(workdir, "home")
    gustd = Gustd(binaries, home, workdir)
    podman = Podman(workdir)
    results, stack_seconds = {}, None
    try:
        for app in APPS:
            gust(binaries, home, "apps", "create", app.split("-")[1])
        stack_seconds = install_stack(binaries, home, options.stacks_from)
        gustd.start()
        for app, (path, body) in APPS.items():
            name = app.split("-")[1]
            work = os.path.join(workdir, app)
            shutil.copytree(os.path.join(ROOT, "examples", app), work, ignore=shutil.ignore_patterns("tests", "test", "node_modules"))
            git = ["git", "-C", work, "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
            subprocess.run(git + ["init", "-q", "-b", "main"], check=True)
            subprocess.run(git + ["add", "."], check=True)
            subprocess.run(git + ["commit", "-qm", "bench"], check=True)
            subprocess.run(git + ["push", "-q", os.path.join(home, "repos", f"{name}.git"), "main"], check=True,
                           env=dict(os.environ, PATH=HOST_PATH, GUST_HOME=home), capture_output=True)
            shown = json.loads(gust(binaries, home, "releases", "show", name, "v1", "--json").stdout)
            if shown.get("stack") != "bookworm@1":
                raise RuntimeError(f"{name} v1 was built on {shown.get('stack') or 'the host'}, not bookworm@1")

            archive = os.path.join(workdir, f"{name}.tar")
            exports, digests = [], []
            for _ in range(2):
                if os.path.exists(archive):
                    os.unlink(archive)
                started = time.monotonic()
                exported = json.loads(gust(binaries, home, "releases", "export", name, "v1", "--archive", archive, "--json").stdout)
                exports.append(time.monotonic() - started)
                digests.append(exported["digest"])
            layout = os.path.join(workdir, f"{name}-oci")
            gust(binaries, home, "releases", "export", name, "v1", "--oci", layout)
            layer_sizes = [os.path.getsize(os.path.join(layout, "blobs", "sha256", d.split(":")[1])) for d in exported["layers"]]
            started = time.monotonic()
            podman("load", "-i", archive)
            load = time.monotonic() - started

            container, gustd_starts = [], []
            for round_ in range(options.rounds):
                port = free_port()
                started = time.monotonic()
                podman("run", "-d", "--name", f"bench-{name}-{round_}", "-p", f"127.0.0.1:{port}:8080", exported["reference"])
                container.append(wait_answer(port, path, body, started))
                podman("rm", "-f", "-t", "0", f"bench-{name}-{round_}")
                gustd.stop()
                started = time.monotonic()
                gustd.start()
                gustd_starts.append(wait_answer(gustd.port, f"/apps/{name}{path}", body, started))
            results[app] = {
                "export_seconds": exports, "same_digest": digests[0] == digests[1], "digest": digests[0],
                "stack_layer": layer_sizes[0], "slug_layer": layer_sizes[1], "gust_layer": layer_sizes[2],
                "archive": os.path.getsize(archive), "load_seconds": load,
                "container_first_answer": container, "gustd_first_answer": gustd_starts,
            }
    finally:
        gustd.stop()
        podman.remove_everything()
        shutil.rmtree(workdir, ignore_errors=True)

    ms = lambda values: f"{statistics.median(values) * 1000:.0f} ms (worst {max(values) * 1000:.0f})"
    mb = lambda size: f"{size / 1e6:.1f} MB"
    print(f"| app | export (1st, 2nd) | same digest | stack layer | slug layer | archive | podman load | "
          f"cold start, container | cold start, gustd |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for app, r in results.items():
        print(f"| {app} | {r['export_seconds'][0]:.1f} s, {r['export_seconds'][1]:.1f} s | {'yes' if r['same_digest'] else 'NO'} | "
              f"{mb(r['stack_layer'])} | {mb(r['slug_layer'])} | {mb(r['archive'])} | {r['load_seconds']:.1f} s | "
              f"{ms(r['container_first_answer'])} | {ms(r['gustd_first_answer'])} |")
    if stack_seconds is not None:
        print(f"\n`gust stacks build bookworm`: {stack_seconds:.0f} s")
    print(f"\n{options.rounds} rounds; digests: " + ", ".join(f"{app} {r['digest'][:19]}…" for app, r in results.items()))
    return 0 if all(r["same_digest"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
