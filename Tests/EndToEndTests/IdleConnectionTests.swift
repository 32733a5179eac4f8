import Foundation
import GustCore
import GustTesting
import Testing

/// Issue 10, item 9: connections that send nothing, or trickle a request
/// head byte by byte, are closed after gustd's idle and header timeouts, so a
/// gustd short of file descriptors gets them back and keeps answering.
@Suite(.timeLimit(.minutes(20)))
struct IdleConnectionTests {
    @Test(.scratchDirectory) func idleAndSlowHeaderConnectionsAreClosedAndCallsGoOn() throws {
        let fixture = try Self.pingApp(gustdArguments: ["--idle-timeout", "3", "--header-timeout", "2"])
        #expect(try fixture.call("POST", "/_/functions/ping", body: "{}").status == 200)

        // gustd's own descriptor limit, lowered as on a host with systemd's defaults (but lower still).
        let gustd = try #require(fixture.gustd)
        let limited = try Command.run("prlimit", ["--pid", "\(gustd.pid)", "--nofile=256:256"])
        #expect(limited.status == 0, "\(limited.output)")

        // A keep-alive connection that made one call and then idles.
        let keptAlive = try RawConnection(port: fixture.port)
        keptAlive.send("POST /apps/cats/_/functions/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        usleep(500_000)
        let keptAliveAnswer = keptAlive.drain()
        #expect(keptAliveAnswer.contains("200"), "the kept-alive call was answered: \(keptAliveAnswer)")
        // More connections than gustd has descriptors for: most say nothing, some trickle a request head.
        var silent: [RawConnection] = []
        var trickling: [RawConnection] = []
        for index in 0..<300 {
            let connection: RawConnection
            do { connection = try RawConnection(port: fixture.port) } catch {
                // Refused means the listener is gone: say whether gustd is still there, and what it logged.
                Issue.record("connection \(index): \(error); gustd alive: \(kill(gustd.pid, 0) == 0)\n\(gustd.logText.suffix(3000))")
                return
            }
            if index % 3 == 0 {
                connection.send("GET /apps/cats/_/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                trickling.append(connection)
            } else {
                silent.append(connection)
            }
        }
        let started = ContinuousClock.now
        var allClosed = false
        while ContinuousClock.now - started < .seconds(30) {
            for connection in trickling { connection.send("a") }  // never the end of the head
            allClosed = (silent + trickling + [keptAlive]).allSatisfy(\.isClosedByPeer)
            if allClosed { break }
            usleep(500_000)
        }
        let open = (silent + trickling).filter { !$0.isClosedByPeer }.count
        #expect(allClosed, "\(open) of 300 idle or trickling connections still open after 30 s; kept-alive closed: \(keptAlive.isClosedByPeer)")

        let call: HTTPResult
        do { call = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/ping", body: "{}", timeout: 10) } catch {
            Issue.record("the call after: \(error); gustd alive: \(kill(gustd.pid, 0) == 0)\n\(gustd.logText.suffix(4000))")
            return
        }
        #expect(call.text == #""pong""#)
        #expect(gustd.logText.contains("descriptor limit"), "gustd logs the descriptor limit it runs with")
    }

    /// Health checks that gustd answers from the bytes (`PlainLane`), before any handler that
    /// counts requests, still count as use: a load balancer checking every second on one
    /// kept-alive connection keeps it past the idle and header timeouts, and it closes once the
    /// checks stop.
    @Test(.scratchDirectory) func healthChecksKeepTheirConnectionInUse() throws {
        let fixture = try Self.pingApp(gustdArguments: ["--idle-timeout", "2", "--header-timeout", "2"])

        let checker = try RawConnection(port: fixture.port)
        for check in 0..<6 {  // 6 s: three times each timeout
            checker.send("GET /apps/cats/_/health HTTP/1.1\r\nHost: x\r\n\r\n")
            usleep(1_000_000)
            let answer = checker.drain()
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.contains(#""app":"cats""#), "check \(check): \(answer)")
            #expect(!checker.isClosedByPeer, "closed while in use, at check \(check)")
        }
        let stopped = ContinuousClock.now
        while !checker.isClosedByPeer, ContinuousClock.now - stopped < .seconds(10) { usleep(200_000) }
        #expect(checker.isClosedByPeer, "still open 10 s after the checks stopped")
    }

    /// More clients than gustd has descriptors never take the last of them: gustd stops accepting
    /// while a reserve is left (new connections wait in the listening socket), because the process
    /// needs descriptors of its own. Without one, libdispatch's thread pool monitor, which opens
    /// /proc/TID/stat once a second when work is queued, could not, and killed gustd with SIGILL.
    @Test(.scratchDirectory) func clientsLeaveGustdADescriptorReserve() throws {
        let fixture = try Self.pingApp(gustdArguments: ["--idle-timeout", "120", "--header-timeout", "120"])
        #expect(try fixture.call("POST", "/_/functions/ping", body: "{}").status == 200)

        let gustd = try #require(fixture.gustd)
        let limit = 256
        let limited = try Command.run("prlimit", ["--pid", "\(gustd.pid)", "--nofile=\(limit):\(limit)"])
        #expect(limited.status == 0, "\(limited.output)")
        var flood: [RawConnection] = []
        // From ten client addresses, each within its share (`oneClientAddressHoldsAtMostItsShare`).
        for index in 0..<300 { flood.append(try RawConnection(port: fixture.port, from: UInt8(2 + index % 10))) }

        // Until gustd has accepted all it will (its descriptor count unchanged for a second; bounded).
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(gustd.pid)/fd").count) ?? 0 }
        var count = descriptors()
        for _ in 0..<30 {
            usleep(1_000_000)
            let now = descriptors()
            if now == count { break }
            count = now
        }
        #expect(kill(gustd.pid, 0) == 0, "gustd still runs:\n\(gustd.logText.suffix(3000))")
        #expect(count > 0 && limit - count >= 16, "gustd holds \(count) of its \(limit) descriptors with 300 clients connected")
        #expect(gustd.logText.contains("new connections wait"), "gustd says it stopped accepting")

        flood.removeAll()  // closed: gustd accepts again and answers
        let call = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/ping", body: "{}", timeout: 30)
        #expect(call.text == #""pong""#)
    }

    /// One client address holds at most its share of gustd's client connections (a quarter of
    /// them, 64 to 1,024): its further connections are closed as soon as they are accepted, so a
    /// flood of connections held open from one address leaves room for everyone else. Before,
    /// 300 silent connections from one address took every connection gustd's descriptors allowed,
    /// and other clients waited in the listening socket until the idle timeout. A trusted proxy,
    /// whose connections carry everyone's calls, has no bound.
    @Test(.scratchDirectory) func oneClientAddressHoldsAtMostItsShare() throws {
        let fixture = try Self.pingApp(gustdArguments: ["--idle-timeout", "120", "--header-timeout", "120", "--trusted-proxy", "127.0.0.3"])
        #expect(try fixture.call("POST", "/_/functions/ping", body: "{}").status == 200)
        let gustd = try #require(fixture.gustd)
        let limited = try Command.run("prlimit", ["--pid", "\(gustd.pid)", "--nofile=256:256"])
        #expect(limited.status == 0, "\(limited.output)")

        /// Until as many connections of `connections` have been closed for a second running (bounded).
        func settled(_ connections: [RawConnection]) -> Int {
            var closed = -1
            for _ in 0..<20 {
                usleep(1_000_000)
                let now = connections.filter(\.isClosedByPeer).count
                if now == closed { break }
                closed = now
            }
            return closed
        }
        let flood = try (0..<300).map { _ in try RawConnection(port: fixture.port, from: 2) }
        let closed = settled(flood)
        #expect(closed >= 300 - 128, "\(300 - closed) of 300 connections from one address still open")
        #expect(gustd.logText.contains("connections from client address 127.0.0.2"), "\(gustd.logText.suffix(2000))")
        let call = try HTTPClient.request(port: fixture.port, "POST", "/apps/cats/_/functions/ping", body: "{}", timeout: 10)
        #expect(call.text == #""pong""#, "another address is answered while the flood holds its share")

        // The trusted proxy: more than a share, none closed (those past the budget wait to be accepted).
        let proxied = try (0..<100).map { _ in try RawConnection(port: fixture.port, from: 3) }
        #expect(settled(proxied) == 0, "connections of a trusted proxy are not bounded by address")
        #expect(kill(gustd.pid, 0) == 0)
    }

    /// The console's and the metrics' listeners close idle and trickling connections too: they
    /// share gustd's connection budget with the apps' listener, and any app's code can reach them
    /// on loopback, so connections held open there forever would stop gustd accepting everywhere.
    @Test(.scratchDirectory) func theConsoleAndMetricsListenersCloseIdleAndSlowConnections() throws {
        let fixture = try PushFixture(gustdArguments: [
            "--console", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--idle-timeout", "2", "--header-timeout", "2",
        ])
        func port(_ file: String) throws -> Int {
            let text = try String(contentsOf: fixture.home.run.appendingPathComponent(file), encoding: .utf8)
            return try #require(Int(text.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        }
        var connections: [(String, RawConnection)] = []
        for (name, file) in [("console", "gustd.console"), ("metrics", "gustd.metrics")] {
            let port = try port(file)
            connections.append(("\(name), silent", try RawConnection(port: port)))
            let trickling = try RawConnection(port: port)
            trickling.send("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            connections.append(("\(name), trickling", trickling))
            let kept = try RawConnection(port: port)
            kept.send("GET \(name == "console" ? "/login" : "/metrics") HTTP/1.1\r\nHost: x\r\n\r\n")
            connections.append(("\(name), kept alive after a request", kept))
        }
        let started = ContinuousClock.now
        var answers: [String: String] = [:]
        func readAll() {
            // What was answered is read off first: a peek at an answer left unread is not the close.
            for (name, connection) in connections { answers[name, default: ""] += connection.drain() }
        }
        while ContinuousClock.now - started < .seconds(20), !connections.allSatisfy({ $0.1.isClosedByPeer }) {
            for (name, connection) in connections where name.hasSuffix("trickling") { connection.send("a") }
            usleep(250_000)
            readAll()
        }
        let open = connections.filter { !$0.1.isClosedByPeer }.map(\.0)
        #expect(open.isEmpty, "still open after 20 s: \(open)")
        for name in ["console, kept alive after a request", "metrics, kept alive after a request"] {
            #expect(answers[name]?.hasPrefix("HTTP/1.1 200") == true, "\(name): \(answers[name] ?? "")")
        }
    }

    /// The records channel is reachable by every app's code (through the link in its socket
    /// directory): a connection silent, trickling its request head, or idle after an answer is
    /// closed as on the apps' listener, rather than held for as long as the instance lives.
    @Test(.scratchDirectory) func theRecordsChannelClosesIdleAndSlowConnections() throws {
        let fixture = try PushFixture(gustdArguments: ["--idle-timeout", "2", "--header-timeout", "2"])
        let path = fixture.home.recordsSocket.path
        var connections: [(String, RawConnection)] = [("silent", try RawConnection(unixSocket: path))]
        let trickling = try RawConnection(unixSocket: path)
        trickling.send("GET /records/cats HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        connections.append(("trickling", trickling))
        let kept = try RawConnection(unixSocket: path)
        kept.send("GET /records/cats HTTP/1.1\r\nHost: x\r\n\r\n")
        connections.append(("kept alive after an answer", kept))
        let started = ContinuousClock.now
        var answers: [String: String] = [:]
        while ContinuousClock.now - started < .seconds(20), !connections.allSatisfy({ $0.1.isClosedByPeer }) {
            trickling.send("a")
            usleep(250_000)
            for (name, connection) in connections { answers[name, default: ""] += connection.drain() }
        }
        let open = connections.filter { !$0.1.isClosedByPeer }.map(\.0)
        #expect(open.isEmpty, "still open after 20 s: \(open)")
        #expect(answers["kept alive after an answer"]?.hasPrefix("HTTP/1.1 401") == true, "\(answers)")
    }

    /// A body trickled in after gustd has answered (a 404 before the body was read) is not use of
    /// the connection: one byte every second kept it open for good, each a connection of gustd's
    /// budget that anyone could hold.
    @Test(.scratchDirectory) func aBodyTrickledAfterTheAnswerDoesNotKeepTheConnection() throws {
        let fixture = try PushFixture(gustdArguments: ["--idle-timeout", "2", "--header-timeout", "2"])
        let connection = try RawConnection(port: fixture.port)
        connection.send("POST /apps/nope/x HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n")
        var answer = ""
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(20), !connection.isClosedByPeer {
            connection.send("a")
            usleep(500_000)
            answer += connection.drain()
        }
        #expect(answer.hasPrefix("HTTP/1.1 404"), "\(answer)")
        #expect(connection.isClosedByPeer, "still open after 20 s of a byte every half second")
    }

    /// gustd with `gustdArguments` and the app `cats` pushed: one op, `ping`.
    static func pingApp(gustdArguments: [String]) throws -> PushFixture {
        let fixture = try PushFixture(gustdArguments: gustdArguments)
        let work = try fixture.workspace("py")
        try work.write("__init__.py", "import gust\n\n@gust.op('ping')\ndef ping():\n    return 'pong'\n")
        try work.commit("Ping")
        let pushed = try work.push(to: fixture.remote)
        #expect(pushed.status == 0, "\(pushed.output)")
        return fixture
    }
}
