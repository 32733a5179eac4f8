"""The buildpacks' real bin/detect, bin/compile and bin/release, run in temporary directories.

    python3 -m unittest discover -s buildpacks/tests

A built slug is moved elsewhere and started with its .gust/start, as gustd
starts a release (with GUST_INTERNAL_TOKEN, the secret its internal surface
answers to), and must answer GET /_gust/health on $GUST_SOCKET.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import textwrap
import time
import unittest

BUILDPACKS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(BUILDPACKS, "python")
NODE = os.path.join(BUILDPACKS, "node")
COMPILE_TIMEOUT = 600
START_TIMEOUT = 10.0

# What pip says when it cannot reach an index; such a failure skips, any other fails.
NETWORK_ERRORS = (
    "NewConnectionError", "Temporary failure in name resolution", "Name or service not known",
    "Network is unreachable", "Connection refused", "ConnectTimeoutError", "ReadTimeoutError",
    "No matching distribution found", "Could not find a version that satisfies", "ProxyError", "SSLError",
)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(textwrap.dedent(text).lstrip())


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
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


# The instance's secret, as gustd passes it and sends it back on /_gust/ requests.
SECRET = "buildpack-tests-secret"


def get(socket_path, target):
    connection = UnixHTTPConnection(socket_path)
    try:
        connection.request("GET", target, headers={"X-Gust-Internal": SECRET})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class BuildpackTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gust-buildpack-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def directory(self, *parts):
        path = os.path.join(self.tmp, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def run_bin(self, buildpack, name, *args, env=None, timeout=60):
        return subprocess.run([os.path.join(buildpack, "bin", name), *args], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def compile(self, buildpack, build_dir, cache_dir=None, env=None):
        cache_dir = cache_dir or os.path.join(self.tmp, "cache")
        env_dir = self.directory("env")
        return self.run_bin(buildpack, "compile", build_dir, cache_dir, env_dir, env=env, timeout=COMPILE_TIMEOUT)

    def assertCompiled(self, result):
        self.assertEqual(result.returncode, 0, f"compile failed:\n{result.stdout}\n{result.stderr}")

    def start_moved_slug(self, build_dir):
        """Moves the slug elsewhere, starts .gust/start there; returns (slug, socket path)."""
        slug = os.path.join(self.directory("releases"), "v1")
        shutil.move(build_dir, slug)
        self.assertFalse(os.path.exists(build_dir))
        socket_path = os.path.join(self.directory("run"), "instance.sock")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NODE_PATH", "GUST_APP_ROOT")}
        env["GUST_SOCKET"] = socket_path
        env["GUST_INTERNAL_TOKEN"] = SECRET
        log = open(os.path.join(self.tmp, "instance.log"), "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen([os.path.join(slug, ".gust", "start")], env=env, cwd=self.tmp,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait(timeout=10)
        self.addCleanup(stop)

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                self.fail(f".gust/start exited with {process.returncode}:\n{self.instance_log()}")
            if os.path.exists(socket_path):
                try:
                    get(socket_path, "/_gust/health")
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                self.fail(f"the slug did not listen on {socket_path} within {START_TIMEOUT:.0f} s:\n{self.instance_log()}")
            time.sleep(0.05)
        return slug, socket_path

    def instance_log(self):
        with open(os.path.join(self.tmp, "instance.log"), "rb") as file:
            return file.read().decode(errors="replace")

    def assertRelease(self, buildpack):
        result = self.run_bin(buildpack, "release", self.directory("app"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ["---", "default_process_types:", "  web: .gust/start"])


class DetectTests(BuildpackTestCase):
    def detect(self, buildpack, files):
        app = tempfile.mkdtemp(dir=self.tmp)
        for name in files:
            write(os.path.join(app, name), "{}\n" if name.endswith(".json") else "\n")
        return self.run_bin(buildpack, "detect", app)

    def test_python(self):
        for files in (["requirements.txt"], ["__init__.py"], ["requirements.txt", "__init__.py", "food.py"]):
            with self.subTest(files=files):
                result = self.detect(PYTHON, files)
                self.assertEqual((result.returncode, result.stdout), (0, "Python\n"))
        for files in ([], ["main.py"], ["lib/__init__.py"], ["package.json"], ["lib/requirements.txt"]):
            with self.subTest(files=files):
                self.assertEqual(self.detect(PYTHON, files).returncode, 1)

    def test_node(self):
        for files in (["package.json"], ["package.json", "index.js"]):
            with self.subTest(files=files):
                result = self.detect(NODE, files)
                self.assertEqual((result.returncode, result.stdout), (0, "Node.js\n"))
        for files in ([], ["index.js"], ["lib/package.json"], ["requirements.txt", "__init__.py"]):
            with self.subTest(files=files):
                self.assertEqual(self.detect(NODE, files).returncode, 1)

    def test_neither(self):
        for buildpack in (PYTHON, NODE):
            with self.subTest(buildpack=os.path.basename(buildpack)):
                result = self.detect(buildpack, ["README.md", "main.go"])
                self.assertEqual((result.returncode, result.stdout), (1, ""))


class ReleaseTests(BuildpackTestCase):
    def test_release_starts_gust_start(self):
        for buildpack in (PYTHON, NODE):
            with self.subTest(buildpack=os.path.basename(buildpack)):
                self.assertRelease(buildpack)


class PythonCompileTests(BuildpackTestCase):
    def write_app(self, build_dir):
        write(os.path.join(build_dir, "__init__.py"), """
            import gust
            from .food import PRICES

            @gust.op('food:buy')
            def buy(food):
                return PRICES[food]
        """)
        write(os.path.join(build_dir, "food.py"), "PRICES = {'tuna': 3.0}\n")

    def test_app_without_requirements_builds_and_runs_moved(self):
        build = self.directory("build")
        self.write_app(build)
        result = self.compile(PYTHON, build)
        self.assertCompiled(result)
        self.assertIn("-----> Python 3.", result.stdout)
        self.assertNotIn("Installing requirements", result.stdout)
        self.assertIn("-----> Installing the Gust runtime", result.stdout)
        start = os.path.join(build, ".gust", "start")
        self.assertTrue(os.stat(start).st_mode & stat.S_IXUSR)
        self.assertTrue(os.path.isfile(os.path.join(build, ".venv", "bin", "python")))
        self.assertTrue(os.path.isfile(os.path.join(build, ".gust", "runtime", "gust", "server.py")))
        self.assertEqual(sorted(os.listdir(os.path.join(build, ".gust", "runtime"))), ["gust"])
        with open(os.path.join(build, ".venv", "pyvenv.cfg")) as file:
            self.assertNotIn(build, file.read(), "the venv must not name the build directory")

        slug, socket_path = self.start_moved_slug(build)
        self.assertEqual(get(socket_path, "/_gust/health"), (200, b'{"ok": true}'))
        status, payload = get(socket_path, "/_gust/manifest")
        self.assertEqual((status, json.loads(payload)["ops"]), (200, [{"name": "food:buy"}]))

    def test_unchanged_requirements_reuse_the_cached_environment(self):
        cache = os.path.join(self.tmp, "cache")
        outputs = []
        for release in ("v1", "v2"):
            build = self.directory("builds", release)
            self.write_app(build)
            write(os.path.join(build, "requirements.txt"), "# the only dependency\nsix==1.16.0\n")
            result = self.compile(PYTHON, build, cache)
            if result.returncode != 0 and release == "v1":
                output = result.stdout + result.stderr
                if any(marker in output for marker in NETWORK_ERRORS):
                    self.skipTest(f"pip could not fetch six==1.16.0 (no network or index?):\n{output[-2000:]}")
            self.assertCompiled(result)
            check = subprocess.run([os.path.join(build, ".venv", "bin", "python"), "-c", "import six; print(six.__version__)"],
                                   capture_output=True, text=True, timeout=60)
            self.assertEqual(check.stdout, "1.16.0\n", check.stderr)
            outputs.append(result.stdout)
        self.assertIn("-----> Installing requirements", outputs[0])
        self.assertNotIn("Requirements unchanged", outputs[0])
        self.assertIn("Requirements unchanged", outputs[1])
        self.assertNotIn("Installing requirements", outputs[1])

    def test_comment_only_requirements_install_nothing(self):
        cache = os.path.join(self.tmp, "cache")
        for release in ("v1", "v2"):
            build = self.directory("builds", release)
            self.write_app(build)
            write(os.path.join(build, "requirements.txt"), "# nothing yet\n\n")
            result = self.compile(PYTHON, build, cache)
            self.assertCompiled(result)
            self.assertNotIn("Installing requirements", result.stdout)
            self.assertNotIn("Requirements unchanged", result.stdout)


class NodeCompileTests(BuildpackTestCase):
    def offline_env(self):
        """PATH with an npm that records being called and fails, and an unreachable registry."""
        fake_bin = self.directory("fake-bin")
        self.npm_marker = os.path.join(self.tmp, "npm-was-called")
        write(os.path.join(fake_bin, "npm"), f"""
            #!/bin/sh
            echo "$@" >> {self.npm_marker}
            echo "npm must not be called" >&2
            exit 1
        """)
        os.chmod(os.path.join(fake_bin, "npm"), 0o755)
        env = dict(os.environ)
        env["PATH"] = fake_bin + os.pathsep + env.get("PATH", "")
        env["npm_config_registry"] = "http://127.0.0.1:9/"
        return env

    def write_app(self, build_dir, package):
        write(os.path.join(build_dir, "package.json"), json.dumps(package))
        write(os.path.join(build_dir, "index.js"), """
            const gust = require('gust');
            gust.op('hello', ({ name = 'world' }) => ({ greeting: `Hello, ${name}!` }));
        """)

    def test_app_without_dependencies_builds_offline_and_runs_moved(self):
        build = self.directory("build")
        self.write_app(build, {"name": "app", "version": "1.0.0", "main": "index.js"})
        result = self.compile(NODE, build, env=self.offline_env())
        self.assertCompiled(result)
        self.assertIn("-----> Node.js v", result.stdout)
        self.assertIn("No dependencies to install", result.stdout)
        self.assertFalse(os.path.exists(self.npm_marker), "compile called npm")
        self.assertFalse(os.path.exists(os.path.join(build, "node_modules")))
        self.assertTrue(os.path.isfile(os.path.join(build, ".gust", "runtime", "gust", "server.js")))
        self.assertEqual(sorted(os.listdir(os.path.join(build, ".gust", "runtime"))), ["gust"])
        self.assertFalse(os.path.exists(os.path.join(build, ".gust", "runtime", "gust", "test")))
        self.assertTrue(os.stat(os.path.join(build, ".gust", "start")).st_mode & stat.S_IXUSR)

        slug, socket_path = self.start_moved_slug(build)
        self.assertEqual(get(socket_path, "/_gust/health"), (200, b'{"ok":true}'))
        status, payload = get(socket_path, "/_gust/manifest")
        self.assertEqual((status, json.loads(payload)["ops"]), (200, [{"name": "hello"}]))

    def test_empty_dependencies_never_call_npm(self):
        build = self.directory("build")
        self.write_app(build, {"name": "app", "dependencies": {}, "devDependencies": {"left-pad": "1.3.0"}})
        result = self.compile(NODE, build, env=self.offline_env())
        self.assertCompiled(result)
        self.assertIn("No dependencies to install", result.stdout)
        self.assertFalse(os.path.exists(self.npm_marker), "compile called npm")

    def test_invalid_package_json_fails_naming_it(self):
        build = self.directory("build")
        write(os.path.join(build, "package.json"), '{"name": "app",\n')
        result = self.compile(NODE, build, env=self.offline_env())
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("package.json is not valid JSON", result.stderr)
        self.assertIn("Fix package.json and push again.", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(build, ".gust", "start")))


if __name__ == "__main__":
    unittest.main()


class EnvDirTests(BuildpackTestCase):
    """Config vars reach compile through ENV_DIR; names bash keeps for itself must not break the build."""

    HOSTILE = {"UID": "1", "EUID": "1", "PPID": "1", "SHELLOPTS": "x", "BASHOPTS": "x", "IFS": "/", "PS4": "$(exit 1)",
               "GUST_HOME": "/", "INDEX_TOKEN": "kept"}

    def compile_with_env(self, buildpack, build):
        env_dir = self.directory("env")
        for name, value in self.HOSTILE.items():
            write(os.path.join(env_dir, name), value)
        return self.run_bin(buildpack, "compile", build, os.path.join(self.tmp, "cache"), env_dir, timeout=COMPILE_TIMEOUT)

    def test_python_build_ignores_names_bash_reserves(self):
        build = self.directory("build")
        write(os.path.join(build, "__init__.py"), "import gust\n")
        self.assertCompiled(self.compile_with_env(PYTHON, build))

    def test_node_build_ignores_names_bash_reserves(self):
        build = self.directory("build")
        write(os.path.join(build, "package.json"), json.dumps({"name": "app"}))
        write(os.path.join(build, "index.js"), "require('gust');\n")
        self.assertCompiled(self.compile_with_env(NODE, build))
