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
}
