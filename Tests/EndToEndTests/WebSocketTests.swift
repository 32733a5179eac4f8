import Foundation
import GustCore
import GustTesting
import Testing

/// WebSockets through gustd: a FastAPI app's and an Express + ws app's sockets,
/// pushed with the real git to a real gustd, echo text and a big binary message,
/// answer pings and close; a frame over gustd's body limit closes with 1009; a socket to `/_/…` is refused; a deploy and gustd's
/// shutdown close open sockets with 1001 (going away) and gustd exits. The
/// client is scripts/websocket_client.py (RFC 6455 with Python's standard
/// library); FastAPI comes from PyPI, ws and Express from Debian, vendored.
@Suite(.timeLimit(.minutes(20)))
struct WebSocketTests {
    /// One JSON object per line the client printed.
    static func lines(_ result: CommandResult) -> [[String: Any]] {
        result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func client(_ url: String, _ actions: [String], options: [String] = []) throws -> [[String: Any]] {
        let result = try run(url, actions, options: options)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        return lines(result)
    }

    static func run(_ url: String, _ actions: [String], options: [String] = []) throws -> CommandResult {
        let script = GustBinaries.sourceRoot.appendingPathComponent("scripts/websocket_client.py").path
        return try Command.run("python3", [script, url] + actions + options, timeout: 90)
    }

    /// A client that opens a socket and waits for it to close, in the background;
    /// returns once the socket is open, with what collects the client's lines.
    static func waitingClient(_ url: String, opened: URL, options: [String] = []) throws -> BackgroundCall<CommandResult> {
        let waiting = BackgroundCall { try Self.run(url, ["wait"], options: ["--opened", opened.path] + options) }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: opened.path), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(FileManager.default.fileExists(atPath: opened.path), "the socket opened")
        return waiting
    }

    /// The echo conversation both apps hold: text, 3 MB of binary, a ping, a close.
    static func converse(_ url: String, options: [String] = []) throws {
        let said = try client(url, ["text:hello", "bytes:3000000", "ping:there", "close:1000"], options: options)
        #expect(said.count == 5, "\(said)")
        guard said.count == 5 else { return }
        #expect(said[0]["status"] as? Int == 101 && said[0]["accepted"] as? Bool == true, "\(said[0])")
        #expect(said[1]["text"] as? String == "echo: hello", "\(said[1])")
        #expect(said[2]["bytes"] as? Int == 3_000_000 && said[2]["same"] as? Bool == true, "\(said[2])")
        #expect(said[3]["pong"] as? String == "there", "\(said[3])")
        #expect(said[4]["close"] as? Int == 1000, "\(said[4])")
    }

    @Test(.scratchDirectory) func aFastAPISocketEchoesThroughGustdAndSlashUnderscoreIsRefused() throws {
        let fixture = try PushFixture(app: "fast")
        let work = try fixture.workspace("fast")
        try work.write("requirements.txt", "fastapi\n")
        try work.write("main.py", """
            import gust
            from fastapi import FastAPI, WebSocket, WebSocketDisconnect

            api = FastAPI()

            @api.websocket('/ws/echo')
            async def echo(socket: WebSocket):
                await socket.accept()
                try:
                    while True:
                        message = await socket.receive()
                        if message['type'] == 'websocket.disconnect':
                            return
                        if message.get('text') is not None:
                            await socket.send_text('echo: ' + message['text'])
                        else:
                            await socket.send_bytes(message['bytes'])
                except WebSocketDisconnect:
                    return

            gust.mount('/', api)

            @gust.op('hello')
            def hello():
                return 'hi'

            """)
        try work.commit("FastAPI with a socket")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")

        try Self.converse("ws://127.0.0.1:\(fixture.port)/apps/fast/ws/echo")
        // The socket gave its instance back: an op runs (a Python instance takes one call at a time).
        #expect(try fixture.call("POST", "/_/functions/hello").text == #""hi""#)
        // A path no socket is served at: FastAPI's own refusal (403), relayed.
        let nowhere = try Self.client("ws://127.0.0.1:\(fixture.port)/apps/fast/ws/nowhere", [])
        #expect(nowhere.first?["status"] as? Int == 403, "\(nowhere)")
        // `/_/…` is Gust's: no socket there, however spelt.
        for path in ["/_/functions/hello", "/_/health", "/_/records/cat", "/%5F/health", "/_gust/health"] {
            let refused = try Self.client("ws://127.0.0.1:\(fixture.port)/apps/fast\(path)", [])
            #expect(refused.first?["status"] as? Int == 404, "\(path): \(refused)")
        }
        #expect(try fixture.call("POST", "/_/functions/hello").text == #""hi""#)
    }

    /// Express and ws (Debian's), with gustd serving HTTPS too: a socket over TLS, a
    /// deploy that closes an open socket (1001), then gustd stopping with a socket open.
    @Test(.scratchDirectory) func anExpressAndWsSocketEchoesOverHTTPAndHTTPSAndGoesAwayOnDeployAndShutdown() throws {
        let (cert, _) = try TLSTools.selfSigned(["express.gust.test"], in: ScratchDirectory.current)
        let key = ScratchDirectory.current.appendingPathComponent("own.key")
        let fixture = try PushFixture(app: "express", gustdArguments: [
            "--domain", "gust.test", "--https", "127.0.0.1:0", "--tls-cert", cert.path, "--tls-key", key.path, "--no-acme",
            "--max-body", "4m",
        ])
        let work = try fixture.workspace("express")
        let modules = work.directory.appendingPathComponent("node_modules")
        try MountTests.vendor("express", into: modules)
        try MountTests.vendor("ws", into: modules)
        try work.write("package.json", #"{"name": "express-ws", "version": "1.0.0", "main": "index.js", "private": true}"#)
        let index = """
            const express = require('express');
            const { WebSocketServer } = require('ws');
            const gust = require('gust');

            const web = express();
            web.get('/', (req, res) => res.send('hello from express'));
            gust.mount('/', web);
            const sockets = new WebSocketServer({ server: gust.server, path: '/echo' });
            sockets.on('connection', (socket) => {
              socket.on('message', (data, binary) => socket.send(binary ? data : `echo: ${data}`));
            });
            gust.op('hello', () => 'hi');

            """
        try work.write("index.js", index)
        try work.commit("Express with ws")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(try fixture.call("GET", "/").text == "hello from express")

        try Self.converse("ws://127.0.0.1:\(fixture.port)/apps/express/echo")
        // A frame over gustd's body limit (--max-body 4m) ends the socket with 1009 (message too big).
        let tooBig = try Self.client("ws://127.0.0.1:\(fixture.port)/apps/express/echo", ["bytes:5000000"])
        #expect(tooBig.last?["close"] as? Int == 1009, "\(tooBig)")
        let https = try TLSTools.httpsPort(fixture.home)
        try Self.converse("wss://express.gust.test:\(https)/echo", options: ["--connect", "127.0.0.1"])
        let refused = try Self.client("ws://127.0.0.1:\(fixture.port)/apps/express/_/functions/hello", [])
        #expect(refused.first?["status"] as? Int == 404, "\(refused)")

        // A deploy: the old release's socket hears 1001 and closes; the new release takes the next.
        let first = try Self.waitingClient(
            "ws://127.0.0.1:\(fixture.port)/apps/express/echo", opened: ScratchDirectory.current.appendingPathComponent("opened-1"))
        try work.write("index.js", index + "gust.op('version', () => 2);\n")
        try work.commit("v2")
        let second = try work.push(to: fixture.remote)
        #expect(second.status == 0, "\(second.output)")
        let wentAway = try first.wait(seconds: 60).map { Self.lines(try $0.get()) } ?? []
        #expect(wentAway.last?["close"] as? Int == 1001, "\(wentAway)")
        #expect(try fixture.call("POST", "/_/functions/version").text == "2")

        // gustd stopping: the open socket (over TLS) hears 1001, and gustd exits in bounded time.
        let last = try Self.waitingClient(
            "wss://express.gust.test:\(https)/echo", opened: ScratchDirectory.current.appendingPathComponent("opened-2"),
            options: ["--connect", "127.0.0.1"])
        let status = fixture.gustd?.terminate(within: 30)
        #expect(status == 0, "gustd exited by itself within 30 s")
        let shutDown = try last.wait(seconds: 30).map { Self.lines(try $0.get()) } ?? []
        #expect(shutDown.last?["close"] as? Int == 1001, "\(shutDown)")
    }

    /// A socket holds its place in the pool for its whole life (as Cloud Run counts it): with one
    /// instance taking one call, an op sent while a socket is open runs once the socket has closed.
    @Test(.scratchDirectory) func anOpenSocketHoldsItsInstancesSlotUntilItCloses() throws {
        let fixture = try PushFixture(app: "held")
        let work = try fixture.workspace("held")
        try MountTests.vendor("ws", into: work.directory.appendingPathComponent("node_modules"))
        try work.write("package.json", #"{"name": "held", "version": "1.0.0", "main": "index.js", "private": true}"#)
        try work.write("index.js", """
            const { WebSocketServer } = require('ws');
            const gust = require('gust');
            new WebSocketServer({ server: gust.server, path: '/echo' })
              .on('connection', (socket) => socket.on('message', (data) => socket.send(`echo: ${data}`)));
            gust.op('hello', () => 'hi');

            """)
        try work.commit("Held")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["scale", "held", "--min", "1", "--max", "1", "--concurrency", "1"]).status == 0)

        let opened = ScratchDirectory.current.appendingPathComponent("opened")
        let url = "ws://127.0.0.1:\(fixture.port)/apps/held/echo"
        let socket = BackgroundCall { try Self.run(url, ["text:hi", "sleep:5", "close:1000"], options: ["--opened", opened.path]) }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: opened.path), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let port = fixture.port
        let op = BackgroundCall { try HTTPClient.request(port: port, "POST", "/apps/held/_/functions/hello") }
        // Gives the op a chance to overtake the open socket, which it must not take.
        #expect(op.wait(seconds: 1) == nil, "the op waits while the socket holds the only slot")
        let said = (try? socket.wait(seconds: 30)?.get()).map { Self.lines($0) } ?? []
        let answered = op.wait(seconds: 60)
        #expect((try? answered?.get())?.text == #""hi""#, "the op runs once the socket has closed: \(String(describing: answered))")
        #expect(said.dropFirst().first?["text"] as? String == "echo: hi" && said.last?["close"] as? Int == 1000, "\(said)")
    }
}
