import Foundation
import GustCore
import GustTesting
import Testing

/// An app's `/dev` in the sandbox: without a subordinate uid range every app's code runs as the
/// uid that owns the sandbox's `/dev` (a tmpfs bubblewrap makes), and it could write there
/// without bound, in memory that no limit of the app's counts and that lived as long as its
/// sandbox holder. `/dev` is read-only now, and `/dev/shm` (POSIX semaphores and shared memory)
/// a tmpfs bounded as `/tmp` is.
@Suite(.timeLimit(.minutes(10)))
struct SandboxDevTests {
    static let app = """
        import multiprocessing
        import os

        import gust

        @gust.op('fill')
        def fill():
            out = {}
            try:
                with open('/dev/gust-fill', 'wb') as f:
                    f.write(b'x' * 1024)
                out['dev'] = 'written'
            except OSError as error:
                out['dev'] = 'refused: %d' % error.errno
            try:
                with open('/dev/shm/gust-fill', 'wb') as f:
                    for _ in range(200):
                        f.write(b'x' * (1024 * 1024))
                out['shm'] = 'written 200 MB'
            except OSError as error:
                out['shm'] = 'refused: %d' % error.errno
            os.remove('/dev/shm/gust-fill')
            try:
                lock = multiprocessing.Lock()
                with lock:
                    out['semaphore'] = 'ok'
            except OSError as error:
                out['semaphore'] = 'failed: %d' % error.errno
            return out
        """

    @Test(.scratchDirectory) func anAppCannotWriteIntoDevAndItsSharedMemoryIsBounded() throws {
        let fixture = try PushFixture()
        guard let gustd = fixture.gustd, gustd.logText.contains("sandbox: bubblewrap") else {
            Issue.record("gustd runs without bubblewrap here: \(fixture.gustd?.logText.prefix(500) ?? "")")
            return
        }
        let push = try fixture.pushPython(Self.app)
        try #require(push.status == 0, "\(push.output)")
        let answer = try fixture.call("POST", "/_/functions/fill", body: "{}")
        #expect(answer.status == 200, "\(answer.text)")
        let out = answer.json as? [String: String] ?? [:]
        #expect(out["dev"]?.hasPrefix("refused") == true, "\(answer.text)")
        #expect(out["shm"]?.hasPrefix("refused: 28") == true, "no space past the bound: \(answer.text)")
        #expect(out["semaphore"] == "ok", "\(answer.text)")
    }

    /// A build without an app uid of its own runs as gustd's uid outside, root's where gustd runs as
    /// root (as here): `/proc/sys` was writable to it (sysctls check the euid outside, not
    /// capabilities), so a build could set the host's `core_pattern` and have the kernel run its
    /// program as root; and `/`, a tmpfs bwrap made with no size, was the app's own. Both are
    /// read-only now. The probe opens for writing and writes nothing.
    @Test(.scratchDirectory) func aBuildCannotWriteTheHostsSysctlsNorTheSandboxsRoot() throws {
        let fixture = try PushFixture()
        guard let gustd = fixture.gustd, gustd.logText.contains("sandbox: bubblewrap") else {
            Issue.record("gustd runs without bubblewrap here: \(fixture.gustd?.logText.prefix(500) ?? "")")
            return
        }
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import os

            import gust

            @gust.op('probe')
            def probe():
                with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'probe.txt')) as f:
                    return {'said': f.read()}
            """)
        try work.write("requirements.txt", "./probe\n")
        try work.write("probe/setup.py", """
            import os
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the build directory
            said = []
            def probe(name, path, flags):
                try:
                    fd = os.open(path, flags, 0o600)
                    os.close(fd)
                    if flags & os.O_CREAT:
                        os.unlink(path)  # pip runs this file more than once
                    said.append('%s: writable' % name)
                except OSError as error:
                    said.append('%s: refused %d' % (name, error.errno))
            probe('sysctl', '/proc/sys/kernel/core_pattern', os.O_WRONLY)
            probe('root', '/gust-probe', os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            with open(os.path.join(root, 'probe.txt'), 'w') as f:
                f.write('; '.join(said))
            from setuptools import setup
            setup(name='probe', version='1.0', py_modules=[])
            """)
        try work.commit("Probe")
        let push = try work.push(to: fixture.remote)
        try #require(push.status == 0, "a build writes where it should as before: \(push.output)")
        let answer = try fixture.call("POST", "/_/functions/probe", body: "{}")
        let said = answer.json?["said"] as? String ?? answer.text
        #expect(said.contains("sysctl: refused"), "\(said)")
        #expect(said.contains("root: refused"), "\(said)")
    }
}
