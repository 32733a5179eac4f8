#!/usr/bin/env python3
"""Runs cases.json against every Gust runtime serving the fixture app.

    python3 buildpacks/protocol-tests/run.py [python|node ...]
    python3 buildpacks/protocol-tests/run.py --url http://127.0.0.1:8000 --runtime python

With --url, the cases go over HTTP to a server already serving the fixture app
(``gust dev`` on apps/<runtime>, or gustd with it pushed: a URL may end with
/apps/APP): ops at /_/functions/NAME, the internal surface's health at
/_/health (its status only), handlers and mounts as they are; gustd's own
refusals of /_gust... are compared by status; cases only the runtime's internal
surface answers (manifest, hooks, schedules) and the output lines are skipped.

Each runtime starts as a real process, as gustd starts it: GUST_SOCKET names a
Unix socket in a temporary directory and GUST_APP_ROOT the fixture app in
apps/<runtime>. Every case is one request on a new connection (the Python
runtime serves one connection at a time). Prints one line per failure, then
"N passed, M failed"; exits 1 on any failure. Python 3 standard library only.
"""

import http.client
import json
import urllib.parse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDPACKS = os.path.dirname(HERE)
START_TIMEOUT = 10.0
# The instance's secret for its internal surface, as gustd passes it (GUST_INTERNAL_TOKEN).
SECRET = "protocol-tests-secret"
REQUEST_TIMEOUT = 10.0


def runtime_commands():
    """name -> (argv, extra environment); the same commands the slugs' .gust/start run."""
    return {
        "python": (
            [sys.executable, "-m", "gust.server"],
            {"PYTHONPATH": os.path.join(BUILDPACKS, "python", "runtime"), "PYTHONDONTWRITEBYTECODE": "1",
             "PYTHONUNBUFFERED": "1"},
        ),
        "node": (
            ["node", os.path.join(BUILDPACKS, "node", "runtime", "gust", "server.js")],
            {"NODE_PATH": os.path.join(BUILDPACKS, "node", "runtime")},
        ),
    }


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over the Unix socket at ``path``."""

    def __init__(self, path, timeout=REQUEST_TIMEOUT):
        super().__init__("instance", timeout=timeout)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def request(socket_path, method, path, body=None, headers=None):
    """One request on its own connection: (status, headers as a dict, body bytes)."""
    connection = UnixHTTPConnection(socket_path)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


def request_url(base, method, path, body=None, headers=None):
    """One request to ``base`` (http://HOST:PORT[/PREFIX]) + ``path``, on its own connection."""
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=REQUEST_TIMEOUT)
    try:
        connection.request(method, parts.path.rstrip("/") + path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


def through_server(case):
    """How a case is sent from outside, to gustd: (path, only the status counts), or None to skip it."""
    path, secret = case["path"], case.get("secret", "right" if case["path"].startswith("/_gust") else "none")
    if path.startswith("/_gust/ops/") and secret == "right":
        return "/_/functions/" + path[len("/_gust/ops/"):], False
    if path == "/_gust/health" and secret == "right":
        return "/_/health", True
    if path.startswith("/_gust") and secret == "right":
        return None     # the runtime's internal surface, which only gustd reaches
    if "_gust" in path.lower() or "%5f" in path.lower():
        return path, True  # gustd refuses it itself, in its own words
    return path, False


class Instance:
    """A runtime process serving the fixture app; stop() kills it by PID."""

    def __init__(self, name, argv, extra_env, workdir):
        self.name = name
        self.socket_path = os.path.join(workdir, f"{name}.sock")
        self.log_path = os.path.join(workdir, f"{name}.log")
        env = dict(os.environ)
        env.update(extra_env)
        env["GUST_SOCKET"] = self.socket_path
        env["GUST_INTERNAL_TOKEN"] = SECRET
        env["GUST_APP_ROOT"] = os.path.join(HERE, "apps", name)
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self):
        """Polls until the socket accepts a connection, at most START_TIMEOUT seconds."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} runtime exited with status {self.process.returncode}:\n{self.output()}")
            if os.path.exists(self.socket_path):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(self.socket_path)
                    return
                except OSError:
                    pass
                finally:
                    probe.close()
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} runtime did not listen on {self.socket_path} within {START_TIMEOUT:.0f} s:\n"
                           f"{self.output()}")

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as file:
            return file.read().decode(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.log.close()


def matches(expected, actual, where="$"):
    """None if ``actual`` contains ``expected`` (objects: a subset; lists: same length, item by item), else why not."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {json.dumps(actual)}"
        for key, value in expected.items():
            if key not in actual:
                return f"{where}: no key {key!r} in {json.dumps(actual)}"
            problem = matches(value, actual[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"
        for index, (want, got) in enumerate(zip(expected, actual)):
            problem = matches(want, got, f"{where}[{index}]")
            if problem:
                return problem
        return None
    if expected != actual or type(expected) is not type(actual):
        return f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"
    return None


def check(case, socket_path, output=None, url=None):
    """Sends one case; returns a list of problems (empty when it passed).

    ``output`` reads what the runtime has printed so far (for the case's "output" lines).
    ``url``: send it to that server instead (see through_server).
    """
    headers = dict(case.get("request_headers", {}))
    body = None
    if "body" in case:
        body = json.dumps(case["body"]).encode()
        headers["Content-Type"] = "application/json"
    elif "raw_body" in case:
        body = case["raw_body"].encode()
    if body is None and case["method"] in ("POST", "PUT", "PATCH"):
        body = b""
    # As gustd does: the secret on /_gust/ paths only; "secret" makes a case send none, a wrong one or the right one.
    secret = case.get("secret", "right" if case["path"].startswith("/_gust") else "none")
    if secret != "none":
        headers["X-Gust-Internal"] = SECRET if secret == "right" else SECRET + "-wrong"
    status_only = False
    try:
        if url is not None:
            path, status_only = through_server(case)
            status, response_headers, payload = request_url(url, case["method"], path, body, headers)
        else:
            status, response_headers, payload = request(socket_path, case["method"], case["path"], body, headers)
    except (OSError, http.client.HTTPException) as error:
        return [f"no answer: {type(error).__name__}: {error}"]
    problems = []
    if status != case["status"]:
        problems.append(f"status {status}, expected {case['status']} (body {payload[:200]!r})")
    if status_only:
        return problems
    for name, value in case.get("headers", {}).items():
        got = response_headers.get(name.lower())
        if got != value:
            problems.append(f"header {name}: {got!r}, expected {value!r}")
    if "json" in case:
        try:
            document = json.loads(payload)
        except ValueError:
            problems.append(f"body is not JSON: {payload[:200]!r}")
        else:
            problem = matches(case["json"], document)
            if problem:
                problems.append(problem)
    if "text" in case and payload != case["text"].encode():
        problems.append(f"body {payload[:200]!r}, expected {case['text']!r}")
    text = payload.decode(errors="replace")
    for forbidden in case.get("absent", []):
        if forbidden in text:
            problems.append(f"body contains {forbidden!r}: {text[:200]!r}")
    if "output" in case and output is not None:
        # The runtimes write before they answer, so the lines are there now; a moment's grace for the pipe.
        deadline = time.monotonic() + 2.0
        while True:
            printed = output().split("\n")
            missing = [line for line in case["output"] if line not in printed]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for line in missing:
            problems.append(f"output lacks the line {line!r}; its last lines: {printed[-6:]!r}")
    return problems


def main_url(url, runtime, cases):
    """Sends the cases a server can answer to ``url`` (the fixture app of ``runtime``)."""
    passed = failed = skipped = 0
    for case in cases:
        if runtime not in case.get("runtimes", [runtime]) or through_server(case) is None:
            skipped += 1
            continue
        problems = check(case, None, url=url)
        if problems:
            failed += 1
            print(f"FAIL {url}: {case['name']}: {'; '.join(problems)}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed ({skipped} skipped: the runtime's internal surface)")
    return 1 if failed else 0


def main(argv):
    with open(os.path.join(HERE, "cases.json")) as file:
        cases = json.load(file)["cases"]
    if "--url" in argv:
        import argparse
        parser = argparse.ArgumentParser(description="The shared cases against a server serving the fixture app.")
        parser.add_argument("--url", required=True, help="http://HOST:PORT of gust dev, or .../apps/APP of gustd")
        parser.add_argument("--runtime", choices=sorted(runtime_commands()), default="python",
                            help="whose fixture app it serves (some cases are one runtime's)")
        options = parser.parse_args(argv)
        return main_url(options.url, options.runtime, cases)
    commands = runtime_commands()
    wanted = argv or sorted(commands)
    unknown = [name for name in wanted if name not in commands]
    if unknown:
        sys.exit(f"unknown runtime {', '.join(unknown)}: choose from {', '.join(sorted(commands))}")

    passed = failed = 0
    manifests = {}
    workdir = tempfile.mkdtemp(prefix="gust-protocol-")
    try:
        for name in wanted:
            argv_, extra_env = commands[name]
            if shutil.which(argv_[0]) is None and not os.path.isabs(argv_[0]):
                print(f"FAIL {name}: {argv_[0]} is not installed")
                failed += 1
                continue
            instance = Instance(name, argv_, extra_env, workdir)
            try:
                try:
                    instance.wait_ready()
                except RuntimeError as error:
                    print(f"FAIL {name}: {error}")
                    failed += 1
                    continue
                for case in cases:
                    if name not in case.get("runtimes", [name]):
                        continue
                    if instance.process.poll() is not None:
                        failed += 1
                        print(f"FAIL {name}: {case['name']}: not sent, the runtime is dead")
                        continue
                    problems = check(case, instance.socket_path, instance.output)
                    if problems and instance.process.poll() is not None:
                        problems.append(f"the runtime exited with status {instance.process.returncode}; "
                                        f"its output:\n{instance.output().rstrip()}")
                    if problems:
                        failed += 1
                        print(f"FAIL {name}: {case['name']}: {'; '.join(problems)}")
                    else:
                        passed += 1
                try:
                    status, _, payload = request(instance.socket_path, "GET", "/_gust/manifest",
                                                 headers={"X-Gust-Internal": SECRET})
                    manifests[name] = json.loads(payload) if status == 200 else None
                except (OSError, http.client.HTTPException, ValueError):
                    manifests[name] = None
            finally:
                instance.stop()

        # Both runtimes serving the same app must describe it identically (but for "runtime").
        if len(manifests) > 1:
            described = {name: {k: v for k, v in (m or {}).items() if k != "runtime"} for name, m in manifests.items()}
            first, *others = sorted(described)
            for other in others:
                if described[other] != described[first]:
                    failed += 1
                    print(f"FAIL manifests differ: {first} {json.dumps(described[first])} "
                          f"!= {other} {json.dumps(described[other])}")
                else:
                    passed += 1
        for name, manifest in manifests.items():
            runtime = (manifest or {}).get("runtime", "")
            if not str(runtime).startswith(name + " "):
                failed += 1
                print(f"FAIL {name}: manifest runtime {runtime!r} does not start with {name!r}")
            else:
                passed += 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
