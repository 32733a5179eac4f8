#!/usr/bin/env python3
"""The web console's benchmark, in docs/benchmarks.md ("The web console").

Run with `make bench` or `scripts/bench_console.py --bin DIR`: a throwaway GUST_HOME with 50 apps
and 500 releases (10 per app, written straight into the store: no builds; each app's newest
release is its live one, with config vars and a schedule; their artifacts do not exist, so gustd
shows them crashing, which the overview renders like any other state), a gustd with `--console` on a free
loopback port (stopped by its PID whatever happens), a console token, and the overview page
fetched sequentially over keep-alive HTTP. Reported: the server's own render time (the page says
it) and the client's round trip, p50 / p95 / max over the runs.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

APPS = 50
RELEASES_PER_APP = 10


def gust(bin_dir, home, *args):
    return subprocess.run([os.path.join(bin_dir, "gust"), *args, "--home", home],
                          check=True, capture_output=True, text=True).stdout.strip()


def populate(bin_dir, home):
    for index in range(APPS):
        gust(bin_dir, home, "apps", "create", f"app{index:02d}")
    db = sqlite3.connect(os.path.join(home, "gust.sqlite"))
    now = time.time()
    for index in range(APPS):
        app = f"app{index:02d}"
        for version in range(1, RELEASES_PER_APP + 1):
            log = "".join(f"-----> step {n} of the build of {app} v{version}\n" for n in range(40))
            db.execute(
                "INSERT INTO releases (app, version, status, commit_id, buildpack, artifact, created_at, description, config, log)"
                " VALUES (?, ?, 'built', ?, 'python', ?, ?, ?, ?, ?)",
                (app, version, f"{version:040x}", f"{index:032x}{version:032x}", now - (RELEASES_PER_APP - version) * 60,
                 f"Deploy {version:07x}", json.dumps({"GREETING": "hi"}), log))
        db.execute("UPDATE apps SET live_version = ? WHERE name = ?", (RELEASES_PER_APP, app))
        db.execute("INSERT INTO config_vars (app, name, value) VALUES (?, 'GREETING', 'hi')", (app,))
        db.execute("INSERT INTO schedules (app, name, kind, spec, anchor, release) VALUES (?, 'tick', 'every', '1m', ?, ?)",
                   (app, now, RELEASES_PER_APP))
    db.commit()
    db.close()


def start_gustd(bin_dir, home):
    log = open(os.path.join(home, "gustd.out"), "w")
    process = subprocess.Popen(
        [os.path.join(bin_dir, "gustd"), "--home", home, "--http", "127.0.0.1:0", "--console", "127.0.0.1:0",
         "--sandbox", "none", "--no-limits", "--access-log", "off"], stdout=log, stderr=subprocess.STDOUT)
    address = os.path.join(home, "run", "gustd.console")
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(address):
        if process.poll() is not None:
            raise SystemExit(f"gustd exited: {open(log.name).read()}")
        time.sleep(0.1)
    return process, int(open(address).read().strip().rsplit(":", 1)[1])


def sign_in(port, token):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/login")
    response = connection.getresponse()
    response.read()
    login = response.getheader("Set-Cookie").split(";")[0]
    csrf = login.split("=", 1)[1]
    connection.request("POST", "/login", body=f"csrf={csrf}&token={token}",
                       headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": login})
    response = connection.getresponse()
    response.read()
    cookies = [value for name, value in response.getheaders() if name.lower() == "set-cookie"]
    session = next(c for c in cookies if c.startswith("gust_session=")).split(";")[0]
    return connection, session


def summary(values):
    values = sorted(values)
    return {"p50": statistics.median(values), "p95": values[int(len(values) * 0.95) - 1], "max": values[-1]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="where gust and gustd are (swift build --show-bin-path)")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="gust-bench-console-")
    process = None
    try:
        populate(args.bin, home)
        token = gust(args.bin, home, "tokens", "create", "--console")
        process, port = start_gustd(args.bin, home)
        connection, session = sign_in(port, token)
        server, client = [], []
        for run in range(args.runs + 10):
            began = time.perf_counter()
            connection.request("GET", "/", headers={"Cookie": session})
            response = connection.getresponse()
            page = response.read().decode()
            elapsed = (time.perf_counter() - began) * 1000
            assert response.status == 200 and page.count('class="app-row"') == APPS, (response.status, page[:300])
            if run >= 10:  # the first ones warm the store's cache
                client.append(elapsed)
                server.append(float(re.search(r"Rendered in ([0-9.]+) ms", page).group(1)))
        result = {"apps": APPS, "releases": APPS * RELEASES_PER_APP, "runs": args.runs,
                  "server_ms": summary(server), "round_trip_ms": summary(client)}
        print(json.dumps(result, indent=2))
        print(f"overview, {APPS} apps / {APPS * RELEASES_PER_APP} releases: server p50 {result['server_ms']['p50']:.1f} ms, "
              f"p95 {result['server_ms']['p95']:.1f} ms; round trip p50 {result['round_trip_ms']['p50']:.1f} ms, "
              f"p95 {result['round_trip_ms']['p95']:.1f} ms (target: under 200 ms)")
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
