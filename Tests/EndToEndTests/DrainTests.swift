import Foundation
import GustCore
import GustTesting
import Testing

/// Log drains against real receivers started by the test (Tests/Receivers/drain_receiver.py, an
/// HTTP endpoint taking NDJSON and a syslog receiver over TCP): every line of a burst arrives in
/// order; a receiver that is stopped and started again gets what it missed; one that stays away
/// while the log rotates past its lines gets a note saying lines were dropped; a drain to loopback
/// without an admin's --allow-private is refused and says why. Also `gust logs --json`.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct DrainTests {
    /// A receiver, stopped by PID when the test is done.
    final class Receiver {
        let mode: String
        let output: URL
        let portFile: URL
        private(set) var process: BackgroundCommand?
        private(set) var port = 0

        init(_ mode: String, in directory: URL) throws {
            self.mode = mode
            output = directory.appendingPathComponent("\(mode)-received.txt")
            portFile = directory.appendingPathComponent("\(mode)-port")
            try start()
        }

        func start() throws {
            try? FileManager.default.removeItem(at: portFile)
            let script = GustBinaries.sourceRoot.appendingPathComponent("Tests/Receivers/drain_receiver.py").path
            process = try BackgroundCommand(
                "/usr/bin/python3", [script, mode, portFile.path, output.path] + (port == 0 ? [] : [String(port)]),
                outputIn: output.deletingLastPathComponent())
            let started = DrainTests.wait(upTo: 10) { (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0) } != nil }
            guard started, let port = Int(try String(contentsOf: portFile, encoding: .utf8)) else {
                throw GustError("the \(mode) receiver did not start: \(process?.output ?? "")")
            }
            self.port = port
        }

        func stop() { process?.stop() }
        deinit { stop() }

        var lines: [String] {
            ((try? String(contentsOf: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    static func wait(upTo seconds: Double, until condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    /// An app whose op prints `burst-FROM` … `burst-(FROM+N-1)`.
    static func pushBurstingApp(_ fixture: PushFixture) throws {
        let work = try fixture.workspace("burst")
        try work.write("__init__.py", """
            import gust

            @gust.op('burst')
            def burst(start, count):
                for i in range(start, start + count):
                    print(f'burst-{i:06d} ' + 'x' * 60, flush=True)
                return count
            """)
        _ = try work.commit("burst")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
    }

    static func burst(_ fixture: PushFixture, from start: Int, count: Int) throws {
        let answer = try fixture.call("POST", "/_/functions/burst", body: #"{"start": \#(start), "count": \#(count)}"#)
        #expect(answer.status == 200, "\(answer.text)")
    }

    /// The burst numbers in what a receiver got, in arrival order.
    static func burstNumbers(_ lines: [String]) -> [Int] {
        lines.compactMap { line in
            guard let range = line.range(of: "burst-") else { return nil }
            return Int(line[range.upperBound...].prefix(6))
        }
    }

    /// `gust drains list --json`; empty if it fails (the test's expectations say what was missing).
    static func drains(_ fixture: PushFixture) -> [[String: Any]] {
        guard let listed = try? GustBinaries.gust(fixture.home, ["drains", "list", fixture.app, "--json"]) else { return [] }
        return ((try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8))) as? [[String: Any]]) ?? []
    }

    @Test(.scratchDirectory) func anHTTPDrainGetsEveryLineInOrderAndWhatItMissedWhileDown() throws {
        let fixture = try PushFixture()
        try Self.pushBurstingApp(fixture)
        let receiver = try Receiver("http", in: fixture.root)
        defer { receiver.stop() }
        let added = try GustBinaries.gust(fixture.home, ["drains", "add", "cats", "http://127.0.0.1:\(receiver.port)/ingest", "--allow-private"])
        #expect(added.status == 0, "\(added.output)")
        // gustd picks the drain up within a second or so; a line printed after that is forwarded.
        #expect(Self.wait(upTo: 10) { FileManager.default.fileExists(atPath: fixture.home.logs.appendingPathComponent("drains").path) })
        try Self.burst(fixture, from: 0, count: 500)
        #expect(Self.wait(upTo: 30) { Self.burstNumbers(receiver.lines).count >= 500 })
        #expect(Self.burstNumbers(receiver.lines) == Array(0..<500))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(receiver.lines.first { $0.contains("burst-") }!.utf8)) as? [String: Any])
        #expect(object["app"] as? String == "cats" && object["function"] as? String == "op burst" && object["stream"] as? String == "stdout")

        // The receiver goes away: the drain says it is failing, and keeps the lines for later.
        receiver.stop()
        try Self.burst(fixture, from: 500, count: 300)
        #expect(Self.wait(upTo: 20) { (Self.drains(fixture).first?["error"] as? String) != nil }, "\(Self.drains(fixture))")
        let listed = try GustBinaries.gust(fixture.home, ["drains", "list", "cats"])
        #expect(listed.stdout.contains("failing since"), "\(listed.output)")
        try receiver.start()
        #expect(Self.wait(upTo: 90) { Self.burstNumbers(receiver.lines).count >= 800 }, "backoff then delivery: \(Self.drains(fixture))")
        #expect(Self.burstNumbers(receiver.lines) == Array(0..<800), "every line once, in order")
        #expect(Self.wait(upTo: 10) { (Self.drains(fixture).first?["error"] as? String) == nil })

        // `gust logs --json`: one object per line.
        let json = try GustBinaries.gust(fixture.home, ["logs", "cats", "-n", "3", "--json"])
        let objects = json.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 3, "\(json.output)")
        #expect(objects.allSatisfy { $0["app"] as? String == "cats" && $0["time"] is String })

        // Removed: nothing more arrives.
        let removed = try GustBinaries.gust(fixture.home, ["drains", "remove", "cats", "http://127.0.0.1:\(receiver.port)/ingest"])
        #expect(removed.status == 0, "\(removed.output)")
        Thread.sleep(forTimeInterval: 2)
        try Self.burst(fixture, from: 800, count: 10)
        Thread.sleep(forTimeInterval: 2)
        #expect(Self.burstNumbers(receiver.lines).count == 800)
    }

    @Test(.scratchDirectory) func aReceiverAwayWhileTheLogRotatesPastItsLinesIsToldWhatWasDropped() throws {
        let fixture = try PushFixture(gustdArguments: ["--log-max", "32k", "--log-files", "1"])
        try Self.pushBurstingApp(fixture)
        let receiver = try Receiver("http", in: fixture.root)
        defer { receiver.stop() }
        #expect(try GustBinaries.gust(fixture.home, ["drains", "add", "cats", "http://127.0.0.1:\(receiver.port)/", "--allow-private"]).status == 0)
        #expect(Self.wait(upTo: 10) { FileManager.default.fileExists(atPath: fixture.home.logs.appendingPathComponent("drains").path) })
        try Self.burst(fixture, from: 0, count: 10)
        #expect(Self.wait(upTo: 30) { Self.burstNumbers(receiver.lines).count >= 10 })
        receiver.stop()
        // About 100 bytes of JSON a line: 3,000 lines is ~300 KB, ten times what the log keeps.
        for start in stride(from: 10, to: 3010, by: 500) { try Self.burst(fixture, from: start, count: 500) }
        try receiver.start()
        #expect(Self.wait(upTo: 90) { Self.burstNumbers(receiver.lines).last == 3009 }, "\(Self.drains(fixture))")
        let numbers = Self.burstNumbers(receiver.lines)
        #expect(numbers == numbers.sorted(), "in order")
        #expect(numbers.count < 3010, "the log kept only part of the burst")
        let note = receiver.lines.first { $0.contains("were dropped") }
        #expect(note != nil, "the receiver is told lines were dropped")
        #expect(note?.contains("\"stream\":\"gustd\"") == true)
        #expect(Self.drains(fixture).first?["gaps"] as? Int == 1)
    }

    @Test(.scratchDirectory) func aSyslogDrainGetsRFC5424MessagesInOrder() throws {
        let fixture = try PushFixture()
        try Self.pushBurstingApp(fixture)
        let receiver = try Receiver("syslog", in: fixture.root)
        defer { receiver.stop() }
        #expect(try GustBinaries.gust(fixture.home, ["drains", "add", "cats", "syslog://127.0.0.1:\(receiver.port)", "--allow-private"]).status == 0)
        #expect(Self.wait(upTo: 10) { FileManager.default.fileExists(atPath: fixture.home.logs.appendingPathComponent("drains").path) })
        try Self.burst(fixture, from: 0, count: 300)
        #expect(Self.wait(upTo: 30) { Self.burstNumbers(receiver.lines).count >= 300 })
        #expect(Self.burstNumbers(receiver.lines) == Array(0..<300))
        let message = try #require(receiver.lines.first { $0.contains("burst-000000") })
        #expect(message.hasPrefix("<14>1 "), "\(message)")
        #expect(message.contains(" cats ") && message.contains(#"function="op burst""#), "\(message)")
    }

    /// A `syslog+tls://` receiver that takes the connection and never answers the TLS handshake
    /// left the drain's write pending for good (NIO's write future heeds no cancellation): gustd
    /// then never finished a SIGTERM, and kept its lock, so a successor waited for ever. The
    /// write now ends at the drain's time limit, or at once when gustd stops.
    @Test(.scratchDirectory) func aSyslogReceiverThatNeverAnswersHoldsUpNeitherTheDrainNorGustdsStop() throws {
        let fixture = try PushFixture()
        try Self.pushBurstingApp(fixture)
        let gustd = try #require(fixture.gustd)
        // A listener that never accepts: the kernel completes the TCP handshake, and nothing answers.
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, length) == 0 && listen(silent, 8) == 0 && getsockname(silent, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let added = try GustBinaries.gust(fixture.home, ["drains", "add", "cats", "syslog+tls://127.0.0.1:\(port)", "--allow-private"])
        #expect(added.status == 0, "\(added.output)")
        #expect(Self.wait(upTo: 10) { FileManager.default.fileExists(atPath: fixture.home.logs.appendingPathComponent("drains").path) })
        try Self.burst(fixture, from: 0, count: 5)
        // The drain's write waits on the handshake, then fails at the drain's time limit (10 s) and says so.
        #expect(Self.wait(upTo: 30) { (Self.drains(fixture).first?["error"] as? String)?.isEmpty == false }, "\(Self.drains(fixture))")
        try Self.burst(fixture, from: 5, count: 5)
        Thread.sleep(forTimeInterval: 1)  // a second write, pending again when gustd is told to stop
        let status = gustd.terminate(within: 30)
        #expect(status == 0, "gustd \(status.map { "exited \($0)" } ?? "still ran 30 s after SIGTERM")")
    }

    @Test(.scratchDirectory) func aDrainToLoopbackWithoutAnAdminsAllowanceIsRefusedAndSaysWhy() throws {
        let fixture = try PushFixture()
        try Self.pushBurstingApp(fixture)
        let receiver = try Receiver("http", in: fixture.root)
        defer { receiver.stop() }
        #expect(try GustBinaries.gust(fixture.home, ["drains", "add", "cats", "http://localhost:\(receiver.port)/"]).status == 0)
        #expect(Self.wait(upTo: 10) { FileManager.default.fileExists(atPath: fixture.home.logs.appendingPathComponent("drains").path) })
        try Self.burst(fixture, from: 0, count: 5)
        #expect(Self.wait(upTo: 20) { ((Self.drains(fixture).first?["error"] as? String) ?? "").contains("loopback") }, "\(Self.drains(fixture))")
        try Self.burst(fixture, from: 5, count: 5)
        Thread.sleep(forTimeInterval: 1)
        #expect(receiver.lines.isEmpty, "nothing reached the loopback receiver")
        let bad = try GustBinaries.gust(fixture.home, ["drains", "add", "cats", "gopher://example.com/"])
        #expect(bad.status != 0 && bad.output.contains("not a drain URL"), "\(bad.output)")
    }
}
