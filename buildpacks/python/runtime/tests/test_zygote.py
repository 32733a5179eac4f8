"""The zygote's request handling over a real socket pair, with real forks.

    python3 -m unittest discover -s buildpacks/python/runtime/tests -t buildpacks/python/runtime
"""

import gc
import http.client
import json
import os
import random
import select
import signal
import socket
import sys
import tempfile
import textwrap
import threading
import unittest

import gust
from gust import server, zygote


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("instance", timeout=10)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self._path)


class ZygoteTests(unittest.TestCase):
    def setUp(self):
        self._saved_registry = gust.registry
        gust.registry = gust._Registry()
        self.addCleanup(setattr, gust, "registry", self._saved_registry)
        saved_environment = dict(os.environ)
        self.addCleanup(lambda: (os.environ.clear(), os.environ.update(saved_environment)))

        saved_after_fork = list(gust._after_fork)
        self.addCleanup(lambda: gust._after_fork.__setitem__(slice(None), saved_after_fork))
        at_fork = {}

        @gust.after_fork
        def remember():
            at_fork["instance"] = os.environ["GUST_INSTANCE"]

        @gust.handler("whoami")
        def whoami(request):
            print("hello from", os.environ["GUST_INSTANCE"], flush=True)
            return {"instance": os.environ["GUST_INSTANCE"], "random": random.random(), "at_fork": at_fork.get("instance"),
                    "token": os.environ.get("GUST_RECORDS_TOKEN"), "internal": os.environ.get("GUST_INTERNAL_TOKEN")}

        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.gustd, control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(self.gustd.close)
        self.zygote = zygote.Zygote(control, "zygote01")
        self.addCleanup(control.close)
        self.forks = []
        self.addCleanup(self._kill_forks)

    def _kill_forks(self):
        for pid in self.forks:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.zygote.reap()

    def receive(self):
        self.assertTrue(select.select([self.gustd], [], [], 10)[0], "the zygote did not answer")
        data, fds, _, _ = socket.recv_fds(self.gustd, 1 << 16, 4)
        return json.loads(data), fds

    def fork(self, instance, cgroup_files=()):
        """Asks for a fork as gustd does; returns (pid, pidfd, socket path, stdout read end)."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        path = os.path.join(self.directory.name, f"{instance}.sock")
        request = {"fork": instance, "socket": path, "internal_token": f"secret-{instance}",
                   "environment": {"GUST_INSTANCE": instance, "GUST_RECORDS_TOKEN": f"token-{instance}"},
                   "cgroup_files": len(cgroup_files)}
        self.zygote.handle(json.dumps(request).encode(), [out_write, err_write, *cgroup_files])
        message, fds = self.receive()
        self.assertEqual(message, {"forked": instance, "pid": message["pid"]})
        self.assertEqual(len(fds), 1, "a pidfd comes with the answer")
        self.forks.append(message["pid"])
        os.close(err_read)
        return message["pid"], fds[0], path, out_read

    def get(self, path, target):
        connection = _UnixHTTPConnection(path)
        connection.request("GET", target)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, json.loads(body)

    def test_each_fork_has_its_own_instance_token_random_state_and_output(self):
        first_pid, first_pidfd, first_path, first_out = self.fork("aaaaaaaa")
        second_pid, second_pidfd, second_path, second_out = self.fork("bbbbbbbb")
        self.assertNotEqual(first_pid, second_pid)
        _, first = self.get(first_path, "/whoami")
        _, second = self.get(second_path, "/whoami")
        self.assertEqual((first["instance"], first["token"]), ("aaaaaaaa", "token-aaaaaaaa"))
        self.assertEqual((second["instance"], second["token"]), ("bbbbbbbb", "token-bbbbbbbb"))
        self.assertNotEqual(first["random"], second["random"])
        self.assertIsNone(first["internal"], "the internal secret is not in the fork's environment")
        self.assertEqual((first["at_fork"], second["at_fork"]), ("aaaaaaaa", "bbbbbbbb"), "gust.after_fork ran in each, after its set-up")
        self.assertEqual(os.read(first_out, 1024), b"hello from aaaaaaaa\n")
        self.assertEqual(os.read(second_out, 1024), b"hello from bbbbbbbb\n")
        for fd in (first_pidfd, second_pidfd, first_out, second_out):
            os.close(fd)

    def test_a_forks_collections_leave_what_the_zygote_made_alone(self):
        # Made before the fork, as an app's import makes its objects: in the permanent generation,
        # so that a collection in a fork writes to none of them (a write copies the zygote's page).
        made_before = [[number] for number in range(1000)]
        self.addCleanup(gc.unfreeze)

        @gust.handler("collect")
        def collect(request):
            gc.collect()
            return {"frozen": gc.get_freeze_count(), "made_before": len(made_before)}

        pid, pidfd, path, out = self.fork("dddddddd")
        _, answer = self.get(path, "/collect")
        self.assertEqual(answer["made_before"], 1000)
        self.assertGreaterEqual(answer["frozen"], 1000, "the zygote's objects were frozen before it forked")
        for fd in (pidfd, out):
            os.close(fd)

    def test_what_only_some_calls_need_is_imported_once_the_zygote_is_idle_after_a_fork(self):
        # Not before its first fork (a cold start's fork waits for all the zygote imports), nor
        # while that fork sets itself up; then, before the forks that follow, which share it
        # instead of each importing it. In a process of its own: this one has imported everything.
        import subprocess

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        probe = textwrap.dedent("""
            import json, os, shutil, socket, sys, tempfile, threading, time
            from gust import zygote
            gustd, control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            wanted = {"urllib.parse", "http"}
            seen = [sorted(wanted & set(sys.modules))]
            z = zygote.Zygote(control, "zygote01")

            def gustd_side():  # the zygote serves in the main thread (its signal wake-up needs it)
                out, err = os.pipe()[1], os.pipe()[1]
                directory = tempfile.mkdtemp()
                path = os.path.join(directory, "a.sock")
                request = {"fork": "aaaaaaaa", "socket": path, "internal_token": "s",
                           "environment": {"GUST_INSTANCE": "aaaaaaaa"}, "cgroup_files": 0}
                socket.send_fds(gustd, [json.dumps(request).encode()], [out, err])
                answer, fds, _, _ = socket.recv_fds(gustd, 1 << 16, 4)
                seen.append(sorted(wanted & set(sys.modules)))
                deadline = time.monotonic() + 10
                while not wanted <= set(sys.modules) and time.monotonic() < deadline:
                    time.sleep(0.01)
                seen.append(sorted(wanted & set(sys.modules)))
                os.kill(json.loads(answer)["pid"], 9)
                shutil.rmtree(directory, True)
                print(json.dumps(seen), flush=True)
                os._exit(0)

            threading.Thread(target=gustd_side, daemon=True).start()
            z.serve()
        """)
        result = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=30,
                                env=dict(os.environ, PYTHONPATH=root))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), [[], [], ["http", "urllib.parse"]])

    def test_a_cold_start_answers_without_importing_json_re_or_socket(self):
        # A cold start is held to the app's own import (`python -c 'import main'`), and whatever the
        # runtime imports besides is what it costs beyond that: json (with re and enum) and socket
        # (with selectors) were 8-9 ms of it (docs/benchmarks.md, "The runtime's own imports out of
        # a cold start"). A real zygote, in a process of its own, imports an app that imports none
        # of them, forks, and the fork answers the manifest and an op with a JSON body.
        import subprocess

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        app = self.directory.name
        with open(os.path.join(app, "main.py"), "w") as main:
            main.write(textwrap.dedent("""
                import sys
                import gust

                @gust.op("modules")
                def modules(n=0, names=()):
                    return {"loaded": sorted(set(names) & set(sys.modules)), "n": n}
            """))
        heavy = ["json", "re", "socket", "enum", "selectors"]
        gustd, control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(gustd.close)
        environment = dict(os.environ, PYTHONPATH=root, GUST_APP_ROOT=app, GUST_INSTANCE="zygote02",
                           GUST_ZYGOTE_FD=str(control.fileno()))
        with open(os.path.join(app, "zygote.log"), "w+") as log:
            process = subprocess.Popen([sys.executable, "-S", "-m", "gust.server"], env=environment,
                                       pass_fds=[control.fileno()], stdout=log, stderr=log)
            control.close()
            try:
                self.assertTrue(select.select([gustd], [], [], 20)[0], "the zygote never said whether it is ready")
                data, fds, _, _ = socket.recv_fds(gustd, 1 << 16, 4)
                for fd in fds:
                    os.close(fd)
                self.assertEqual(json.loads(data), {"ready": True}, open(log.name).read())
                out_read, out_write = os.pipe()
                path = os.path.join(app, "cold.sock")
                request = {"fork": "cccccccc", "socket": path, "internal_token": "secret-cold",
                           "environment": {"GUST_INSTANCE": "cccccccc"}, "cgroup_files": 0}
                socket.send_fds(gustd, [json.dumps(request).encode()], [out_write, out_write])
                os.close(out_write)
                self.assertTrue(select.select([gustd], [], [], 20)[0], "the zygote did not fork")
                data, fds, _, _ = socket.recv_fds(gustd, 1 << 16, 4)
                for fd in fds:
                    os.close(fd)
                forked = json.loads(data)
                self.assertEqual(forked["forked"], "cccccccc", forked)
                self.addCleanup(lambda: os.killpg(forked["pid"], signal.SIGKILL))
                connection = _UnixHTTPConnection(path)
                connection.request("GET", "/_gust/manifest", headers={"X-Gust-Internal": "secret-cold"})
                response = connection.getresponse()
                self.assertEqual((response.status, json.loads(response.read())["ops"]), (200, [{"name": "modules"}]))
                connection.request("POST", "/_gust/ops/modules", body=json.dumps({"n": 1.5, "names": heavy}),
                                   headers={"X-Gust-Internal": "secret-cold", "X-Gust-Call": "7"})
                response = connection.getresponse()
                self.assertEqual((response.status, json.loads(response.read())), (200, {"loaded": [], "n": 1.5}))
                connection.close()
                os.close(out_read)
            finally:
                gustd.close()  # the zygote's end of the control socket closes: it exits
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def test_the_internal_surface_answers_only_the_forks_own_secret(self):
        pid, pidfd, path, out = self.fork("cccccccc")
        connection = _UnixHTTPConnection(path)
        connection.request("GET", "/_gust/health", headers={"X-Gust-Internal": "secret-cccccccc"})
        self.assertEqual(connection.getresponse().status, 200)
        connection.close()
        status, _ = self.get(path, "/_gust/health")
        self.assertEqual(status, 404)
        for fd in (pidfd, out):
            os.close(fd)

    def test_a_fork_that_exits_is_reaped_and_reported(self):
        pid, pidfd, _, out = self.fork("dddddddd")
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(select.select([pidfd], [], [], 10)[0], "the pidfd says when the fork has exited")
        self.zygote.reap()
        message, _ = self.receive()
        self.assertEqual(message["exited"], pid)
        self.assertTrue(os.WIFSIGNALED(message["status"]))
        self.assertEqual(os.WTERMSIG(message["status"]), signal.SIGTERM)
        self.forks.remove(pid)
        for fd in (pidfd, out):
            os.close(fd)

    def test_a_fork_that_exits_as_gustd_closes_its_end_ends_the_zygote_quietly(self):
        # gustd stops a zygote and its forks together (a deploy's switch): the zygote may reap a
        # fork after gustd's end is gone, and its report then has nowhere to go. It returns, with
        # no BrokenPipeError's traceback in the app's log.
        pid, pidfd, _, out = self.fork("eeeeeeee")
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(select.select([pidfd], [], [], 10)[0], "the pidfd says when the fork has exited")
        self.gustd.close()
        os.write(self.zygote._wake_write, b"\0")  # the SIGCHLD that came with it, read first
        self.zygote.serve()
        self.forks.remove(pid)
        for fd in (pidfd, out):
            os.close(fd)

    def test_gustd_closing_its_end_with_a_report_unread_ends_the_zygote_quietly(self):
        # A report gustd had not read when it closed its end (a fork's exit, as it stops the
        # zygote) makes the kernel reset the connection: the zygote's next read fails with
        # ECONNRESET, not an end of file. It ends all the same, without a traceback.
        self.zygote.send({"exited": 1, "status": 0})
        self.gustd.close()
        self.assertFalse(self.zygote.receive(), "gustd has gone: nothing more to read")

    def test_a_child_it_did_not_fork_for_gustd_is_collected_and_not_reported(self):
        # As PID 1 of a sandbox's PID namespace the zygote inherits its forks' orphans: this child
        # stands for one (a child of the zygote's process that gustd never asked for).
        orphan = os.fork()
        if orphan == 0:
            os._exit(3)
        pid, pidfd, _, out = self.fork("eeeeeeee")
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(select.select([pidfd], [], [], 10)[0])
        def state():
            with open(f"/proc/{orphan}/stat") as stat:
                return stat.read().split(") ")[1][0]

        tries = 100  # until it has exited (a zombie), at most 5 s
        while tries and state() != "Z":
            tries -= 1
            select.select([], [], [], 0.05)
        self.zygote.reap()
        with self.assertRaises(ChildProcessError, msg="the orphan was collected"):
            os.waitpid(orphan, os.WNOHANG)
        message, _ = self.receive()
        self.assertEqual(message["exited"], pid, "only the fork is reported")
        self.assertFalse(select.select([self.gustd], [], [], 0.2)[0], "nothing more is sent")
        self.forks.remove(pid)
        for fd in (pidfd, out):
            os.close(fd)

    def test_a_request_without_its_descriptors_is_refused_and_they_are_closed(self):
        read_end, write_end = os.pipe()
        self.zygote.handle(json.dumps({"fork": "eeeeeeee", "socket": "/nonexistent"}).encode(), [write_end])
        message, _ = self.receive()
        self.assertIsNone(message["failed"])
        self.assertIn("two descriptors", message["error"])
        with self.assertRaises(OSError):
            os.fstat(write_end)
        os.close(read_end)

    def test_a_fork_writes_itself_into_each_cgroup_file_it_was_sent_first(self):
        # Stand-ins for the cgroup.procs files gustd opens: what the fork writes arrives here.
        memory_read, memory_write = os.pipe()
        pids_read, pids_write = os.pipe()
        pid, pidfd, path, out = self.fork("ffffffff", cgroup_files=(memory_write, pids_write))
        for read_end in (memory_read, pids_read):
            self.assertTrue(select.select([read_end], [], [], 10)[0])
            self.assertEqual(os.read(read_end, 16), b"0", "the fork wrote itself (0: the writer) into the file")
            self.assertEqual(os.read(read_end, 16), b"", "and closed it: nothing of the app holds it")
            os.close(read_end)
        os.close(pidfd)
        os.close(out)

    def test_a_fork_serves_on_the_socket_gustd_bound_and_sent_before_its_cgroup_files(self):
        # gustd binds the fork's socket in a directory the app cannot write in (a read-only /run/gust
        # in the sandbox) and sends it after stdout and stderr, before the cgroup.procs files.
        path = os.path.join(self.directory.name, "bound.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(8)
        memory_read, memory_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        request = {"fork": "kkkkkkkk", "socket": os.path.join(self.directory.name, "absent", "k.sock"),
                   "internal_token": "s", "environment": {"GUST_INSTANCE": "kkkkkkkk", "GUST_RECORDS_TOKEN": "t"},
                   "listener": True, "cgroup_files": 1}
        @gust.handler("sockets")
        def sockets(request):
            # Descriptors of sockets the app's own subprocesses would inherit.
            held = []
            for name in os.listdir("/proc/self/fd"):
                try:
                    if os.readlink(f"/proc/self/fd/{name}").startswith("socket:") and os.get_inheritable(int(name)):
                        held.append(int(name))
                except OSError:
                    pass
            return {"inheritable": held}

        # As received: descriptors of the zygote's own, which it closes once it has forked; inheritable,
        # as a message's descriptors arrive unless asked for otherwise.
        passed = os.dup(listener.fileno())
        os.set_inheritable(passed, True)
        self.zygote.handle(json.dumps(request).encode(), [out_write, err_write, passed, memory_write])
        listener.close()  # only the fork holds the socket now
        message, fds = self.receive()
        self.assertEqual(message, {"forked": "kkkkkkkk", "pid": message["pid"]})
        self.forks.append(message["pid"])
        self.assertTrue(select.select([memory_read], [], [], 10)[0])
        self.assertEqual(os.read(memory_read, 16), b"0", "the descriptor after the listener is the cgroup file")
        _, whoami = self.get(path, "/whoami")
        self.assertEqual(whoami["instance"], "kkkkkkkk")
        # The fork serves on a copy of its own; the descriptor it was sent is closed, so a process the
        # app starts (os.system, subprocess with close_fds=False) cannot accept gustd's connections.
        self.assertEqual(self.get(path, "/sockets")[1], {"inheritable": []})
        self.assertFalse(os.path.exists(os.path.join(self.directory.name, "absent")))
        for fd in (*fds, memory_read, out_read, err_read):
            os.close(fd)

    def test_a_request_without_its_cgroup_files_is_refused(self):
        read_end, write_end = os.pipe()
        out_read, out_write = os.pipe()
        request = {"fork": "gggggggg", "socket": "/nonexistent", "cgroup_files": 1}
        self.zygote.handle(json.dumps(request).encode(), [write_end, out_write])
        message, _ = self.receive()
        self.assertIn("one per cgroup file", message["error"])
        self.assertEqual(os.read(read_end, 1), b"", "the descriptors it came with are closed")
        os.close(read_end)
        os.close(out_read)

    def test_a_request_that_is_not_json_is_refused(self):
        self.zygote.handle(b"not json", [])
        message, _ = self.receive()
        self.assertIsNone(message["failed"])

    def test_a_request_that_is_json_but_no_object_is_refused(self):
        for data in (b"[1]", b'"fork"', b"null"):
            with self.subTest(data=data):
                self.zygote.handle(data, [])
                message, _ = self.receive()
                self.assertIsNone(message["failed"])
                self.assertIn("JSON object", message["error"])

    def test_a_request_longer_than_a_message_is_refused_and_its_descriptors_closed(self):
        read_end, write_end = os.pipe()
        socket.send_fds(self.gustd, [b"x" * (zygote.MESSAGE_BYTES + 1)], [write_end])
        os.close(write_end)
        self.assertTrue(self.zygote.receive())
        message, _ = self.receive()
        self.assertIsNone(message["failed"])
        self.assertIn(f"more than {zygote.MESSAGE_BYTES} bytes", message["error"])
        self.assertEqual(os.read(read_end, 1), b"", "the descriptor it came with is closed")
        os.close(read_end)

    def test_a_request_within_the_bound_is_read_whole_and_a_closed_end_ends_it(self):
        request = json.dumps({"fork": "hhhhhhhh", "socket": "/nonexistent", "pad": "x" * (zygote.MESSAGE_BYTES - 100)})
        self.assertLessEqual(len(request), zygote.MESSAGE_BYTES)
        self.gustd.send(request.encode())
        self.assertTrue(self.zygote.receive())
        message, _ = self.receive()
        self.assertIn("two descriptors", message["error"], "read as JSON: whole")
        self.gustd.shutdown(socket.SHUT_WR)
        self.assertFalse(self.zygote.receive())

    def test_a_long_reason_is_cut_to_fit_a_message(self):
        self.zygote.send({"ready": False, "reason": "thread " * 100000})
        data, _, flags, _ = socket.recv_fds(self.gustd, zygote.MESSAGE_BYTES + 1, 4)
        self.assertLessEqual(len(data), zygote.MESSAGE_BYTES)
        self.assertEqual(flags & socket.MSG_TRUNC, 0)
        self.assertTrue(json.loads(data)["reason"].startswith("thread thread"))


class UnforkableTests(unittest.TestCase):
    def test_a_quiet_process_can_be_forked(self):
        self.assertIsNone(zygote.unforkable())

    def test_a_thread_started_at_import_is_named(self):
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait, name="poller")
        thread.start()
        try:
            self.assertIn("1 thread(s) at import (poller)", zygote.unforkable())
        finally:
            stop.set()
            thread.join()

    def test_an_open_socket_is_named_unless_allowed(self):
        connection, other = socket.socketpair()
        try:
            self.assertIn("2 socket(s)", zygote.unforkable())
            self.assertIsNone(zygote.unforkable(allowed=(connection.fileno(), other.fileno())))
        finally:
            connection.close()
            other.close()


class RelabelTests(unittest.TestCase):
    def test_rewrites_the_entry_in_place_and_only_at_an_entry_start(self):
        with tempfile.TemporaryDirectory() as directory:
            block = b"XGUST_INSTANCE=zygote01\0GUST_INSTANCE=zygote01\0PATH=/bin\0"
            memory = os.path.join(directory, "mem")
            with open(memory, "wb") as file:
                file.write(b"\0" * 100 + block)
            stat = os.path.join(directory, "stat")
            fields = ["0"] * 47 + ["100", str(100 + len(block))]
            with open(stat, "w") as file:
                file.write("1 (python (x)) " + " ".join(fields))
            at = zygote.environ_slot("zygote01", stat, memory)
            self.assertEqual(at, 100 + len(b"XGUST_INSTANCE=zygote01\0"), "the entry's own start, not a longer name's")
            self.assertIsNone(zygote.environ_slot("other001", stat, memory))
            self.assertTrue(zygote.relabel("zygote01", "abcdefgh", at, memory))
            with open(memory, "rb") as file:
                self.assertEqual(file.read()[100:], b"XGUST_INSTANCE=zygote01\0GUST_INSTANCE=abcdefgh\0PATH=/bin\0")
            self.assertFalse(zygote.relabel("abcdefgh", "longer-id", at, memory), "only the same length")
            self.assertFalse(zygote.relabel("abcdefgh", "zygote01", None, memory), "nowhere to write")

    def test_rewrites_what_the_kernel_shows_of_a_real_process(self):
        import subprocess
        import sys
        script = ("from gust import zygote; at = zygote.environ_slot('zygote01'); print(zygote.relabel('zygote01', 'abcdefgh', at)); "
                  "print(open('/proc/self/environ', 'rb').read().split(b'\\0').count(b'GUST_INSTANCE=abcdefgh'))")
        runtime = os.path.dirname(os.path.dirname(os.path.abspath(zygote.__file__)))
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                env={"GUST_INSTANCE": "zygote01", "PYTHONPATH": runtime})
        self.assertEqual(result.stdout.split(), ["True", "1"])


    def test_a_fork_rewrites_its_own_entry_where_the_zygote_found_it(self):
        import subprocess
        import sys
        script = "\n".join([
            "import os",
            "from gust import zygote",
            "at = zygote.environ_slot('zygote01')",
            "pid = os.fork()",
            "if pid == 0:",
            "    done = zygote.relabel('zygote01', 'abcdefgh', at)",
            "    mine = open('/proc/self/environ', 'rb').read().split(b'\\0')",
            "    os._exit(0 if done and b'GUST_INSTANCE=abcdefgh' in mine else 1)",
            "_, status = os.waitpid(pid, 0)",
            "print(os.waitstatus_to_exitcode(status), b'GUST_INSTANCE=zygote01' in open('/proc/self/environ', 'rb').read())",
        ])
        runtime = os.path.dirname(os.path.dirname(os.path.abspath(zygote.__file__)))
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                env={"GUST_INSTANCE": "zygote01", "PYTHONPATH": runtime})
        self.assertEqual(result.stdout.split(), ["0", "True"], "the fork's entry rewritten, the zygote's kept")


if __name__ == "__main__":
    unittest.main()
