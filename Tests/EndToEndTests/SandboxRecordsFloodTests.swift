import Foundation
import GustCore
import GustTesting
import Testing

/// The records channel is a socket every sandboxed instance can reach (a hard link in its own
/// socket directory to gustd's listener, mode 0666). A hostile app's function opens 2,000
/// connections to it, with gustd short of descriptors (256): gustd must keep its descriptor
/// reserve (it once died of SIGILL in libdispatch when its HTTP clients took them all), keep
/// accepting HTTP, serve the other app's records, and hold only a bounded number of the
/// flooding app's connections.
extension SandboxTests {
    @Test(.scratchDirectory) func aRecordsChannelFloodLeavesGustdItsReserveAndTheOtherAppsRecords() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["dogs", "evil"])
        let gustd = try GustdProcess(home: home, arguments: ["--function-timeout", "120"], user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }

        let dogs = try setup.workspace(root, "dogs", files: [
            "__init__.py": "import gust\n\n@gust.op('bark')\ndef bark(n):\n    gust.records.save('dog', {'n': n})\n    return 'woof'\n",
        ])
        #expect(try setup.push(dogs, to: home.repository(try AppName("dogs")).path).status == 0)
        let evil = try setup.workspace(root, "evil", files: ["__init__.py": Self.recordsFlood])
        #expect(try setup.push(evil, to: home.repository(try AppName("evil")).path).status == 0)
        func bark(_ n: Int) throws -> HTTPResult {
            try HTTPClient.request(port: gustd.port, "POST", "/apps/dogs/_/functions/bark", body: #"{"n": \#(n)}"#, timeout: 30)
        }
        #expect(try bark(0).status == 200)
        // The hostile app's instance starts now, with gustd's descriptor limit as it was.
        let saved = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/save", timeout: 30)
        #expect(saved.json as? [String: String] == ["saved": "yes"], "\(saved.text)")

        // gustd short of descriptors, as in IdleConnectionTests (lowered by its own user: root here may
        // lack CAP_SYS_RESOURCE, which another user's process needs).
        let limit = 256
        let limited = try setup.run(["prlimit", "--pid", "\(gustd.pid)", "--nofile=\(limit):\(limit)"])
        #expect(limited.status == 0, "\(limited.output)")
        let flood: HTTPResult
        do {
            flood = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/flood", body: #"{"count": 2000}"#, timeout: 120)
        } catch {
            Issue.record("the flood's call: \(error); gustd alive: \(kill(gustd.pid, 0) == 0)\n\(gustd.logText.suffix(3000))")
            return
        }
        #expect(flood.status == 200, "\(flood.text)\n\(gustd.logText.suffix(3000))")
        let outcome = flood.json ?? [:]
        #expect(kill(gustd.pid, 0) == 0, "gustd is up:\n\(gustd.logText.suffix(3000))")

        // gustd holds a bounded number of the flooding app's connections, and keeps its reserve.
        let connected = outcome["connected"] as? Int ?? 0
        let open = outcome["open"] as? Int ?? Int.max
        #expect(connected >= 1000, "\(outcome)")
        #expect(open <= 128, "gustd holds \(open) of the \(connected) records connections the hostile app opened: \(outcome)")
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(gustd.pid)/fd").count) ?? limit
        print("records channel flood: \(outcome); gustd holds \(descriptors) of its \(limit) descriptors")
        #expect(limit - descriptors >= 16, "gustd holds \(descriptors) of its \(limit) descriptors")

        // Its HTTP listener accepts, and the other app's calls keep their records.
        for n in 1...3 {
            let answer: HTTPResult
            do { answer = try bark(n) } catch {
                Issue.record("dogs' call \(n): \(error); gustd alive: \(kill(gustd.pid, 0) == 0)\n\(gustd.logText.suffix(3000))")
                return
            }
            #expect(answer.status == 200, "\(answer.text)")
        }
        // The flooding app, holding all it may, gets no more: its next records call is refused.
        let refused = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/save", timeout: 30)
        #expect((refused.json as? [String: String])?["saved"] == "no", "\(refused.text)")
        #expect(gustd.logText.contains("records channel"), "gustd says which connections it closes:\n\(gustd.logText.suffix(2000))")

        // Once it lets go, its records work again.
        let released = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/release", timeout: 30)
        #expect(released.status == 200, "\(released.text)")
        var again: [String: String]?
        for _ in 0..<20 where again?["saved"] != "yes" {
            again = try HTTPClient.request(port: gustd.port, "POST", "/apps/evil/_/functions/save", timeout: 30).json as? [String: String]
            if again?["saved"] != "yes" { usleep(250_000) }
        }
        #expect(again == ["saved": "yes"], "\(String(describing: again))")
        let token = try setup.run([installed.gust, "tokens", "create", "dogs", "--home", home.path])
        let auth = ["X-Auth-Token": token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)]
        let page = try HTTPClient.request(port: gustd.port, "GET", "/apps/dogs/_/records/dog?limit=100", headers: auth)
        #expect((page.json?["records"] as? [Any])?.count == 4, "\(page.text)")
        #expect(kill(gustd.pid, 0) == 0, "gustd is up")
    }

    /// The hostile app: `flood` opens COUNT connections to its records channel and keeps them,
    /// then says how many gustd left open; `save` makes one records call; `release` closes them.
    static let recordsFlood = """
        import os, socket, time, gust

        held = []

        def closed(connection):
            try:
                return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b''
            except BlockingIOError:
                return False
            except OSError:
                return True

        @gust.op('flood')
        def flood(count):
            path = os.environ['GUST_RECORDS_SOCKET']
            refused, deadline = None, time.time() + 15
            while len(held) < count and time.time() < deadline:
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.setblocking(False)
                try:
                    connection.connect(path)
                    held.append(connection)
                except BlockingIOError as error:  # the listener's queue is full: gustd is not accepting
                    connection.close()
                    refused = error.strerror
                    time.sleep(0.01)
                except OSError as error:
                    connection.close()
                    refused = error.strerror
                    break
            # Until gustd has taken what it will: the number still open unchanged for a second (at most 30 s).
            counts, deadline = [], time.time() + 30
            while time.time() < deadline and (len(counts) < 5 or len(set(counts[-5:])) > 1):
                time.sleep(0.25)
                counts.append(sum(1 for connection in held if not closed(connection)))
            return {'connected': len(held), 'refused': refused, 'open': counts[-1] if counts else None}

        @gust.op('save')
        def save():
            try:
                gust.records.save('cat', {'name': 'tom'})
                return {'saved': 'yes'}
            except Exception as error:
                return {'saved': 'no', 'error': '%s: %s' % (type(error).__name__, error)}

        @gust.op('release')
        def release():
            for connection in held:
                connection.close()
            held.clear()
            return 'released'
        """
}
