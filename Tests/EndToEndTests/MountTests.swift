import Foundation
import GustCore
import GustTesting
import Testing

/// `gust.mount`: a Flask, a FastAPI and an Express app pushed to a real gustd
/// answer their own routes, beside an op, a handler and a schedule of the same
/// app in the same process; a prefix mount sees its prefix stripped; a
/// streamed answer's first chunk reaches the caller before the rest exists.
/// Flask and FastAPI come from PyPI through requirements.txt; Express is
/// Debian's node-express, vendored into the app's node_modules.
@Suite(.timeLimit(.minutes(20)))
struct MountTests {
    /// Appended to each app: a schedule every 2 s that prints `mount-tick` (read from the app's
    /// log: a sandboxed app writes no host file the test could read).
    static func ticks(_ fixture: PushFixture, app: String) -> Int {
        AppLogMarks.wait(fixture.home, app: app, prefix: "mount-tick", seconds: 20) { $0.count >= 2 }.count
    }

    /// A file the test creates and the app waits for. Sandboxed, an app sees no host path but its
    /// release and its socket directory (`/run/gust` inside, `GUST_HOME/run/instances/ID/` outside,
    /// one per instance): `seen` is the path inside, `create` makes it in every instance's directory.
    struct Gate {
        let seen: String
        let create: () -> Void
        /// Whether the gate is per instance: one started after `create` does not see it.
        let isPerInstance: Bool

        init(_ fixture: PushFixture, name: String) {
            let host = fixture.root.appendingPathComponent(name).path
            guard fixture.gustd?.logText.contains("sandbox: bubblewrap") == true else {
                seen = host
                isPerInstance = false
                create = { _ = FileManager.default.createFile(atPath: host, contents: Data()) }
                return
            }
            seen = "/run/gust/" + name
            isPerInstance = true
            let instances = fixture.home.run.appendingPathComponent("instances")
            create = {
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: instances.path)) ?? [] where !entry.contains(".") {
                    _ = FileManager.default.createFile(atPath: instances.appendingPathComponent(entry).appendingPathComponent(name).path, contents: Data())
                }
            }
        }
    }

    /// Asks for `path` on a raw connection and reads until `first` arrives
    /// (at most 30 s), then creates `release`, which the app waits for before
    /// writing the rest, and reads the rest. Returns (what had arrived when
    /// `first` did, everything).
    static func streamed(port: Int, _ path: String, first: String, release: Gate) throws -> (early: String, all: String) {
        let connection = try RawConnection(port: port)
        connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n")
        var early = ""
        let deadline = Date().addingTimeInterval(30)
        while !early.contains(first), Date() < deadline {
            early += connection.drain()
            if !early.contains(first) { Thread.sleep(forTimeInterval: 0.05) }
        }
        release.create()
        return (early, early + connection.readAll(seconds: 30))
    }

    @Test(.scratchDirectory) func aFlaskAppAnswersItsRoutesBesideItsFunctions() throws {
        let fixture = try PushFixture(app: "flask")
        let work = try fixture.workspace("flask", copying: PushFixture.example("python-flask"))
        let main = try String(contentsOf: work.directory.appendingPathComponent("main.py"), encoding: .utf8)
        try work.write("main.py", main + """

            gust.mount('/web', web)


            @gust.every('2s')
            def tick():
                print('mount-tick', flush=True)

            """)
        try work.commit("Flask beside Gust")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("schedule tidy every 1h"), "\(push.stderr)")

        #expect(try fixture.call("GET", "/").text == "Hello from Flask, through Gust!\n")
        // A HEAD says the length a GET's answer has (Flask answers it), and nothing follows its head:
        // the next request on the connection is answered in turn.
        let asker = try RawConnection(port: fixture.port)
        asker.send("HEAD /apps/flask/ HTTP/1.1\r\nHost: x\r\n\r\nGET /apps/flask/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let both = asker.readAll(seconds: 30)
        let heads = both.components(separatedBy: "HTTP/1.1 200 OK\r\n")
        #expect(heads.count == 3, "\(both)")
        #expect(heads.dropFirst().first?.lowercased().contains("content-length: 32\r\n") == true, "the HEAD's: \(both)")
        #expect(heads.dropFirst().first?.hasSuffix("\r\n\r\n") == true, "nothing after the HEAD's head: \(both)")
        #expect(both.hasSuffix("\r\n\r\nHello from Flask, through Gust!\n"), "\(both)")
        let todo = try fixture.call("GET", "/todos/1")
        #expect(todo.status == 200)
        #expect(todo.json?["script_root"] as? String == "")
        #expect(todo.json?["path"] as? String == "/todos/1")
        let added = try fixture.call("POST", "/todos", body: #"{"title": "Buy tuna"}"#, headers: ["Content-Type": "application/json"])
        #expect(added.status == 201, "\(added.text)")
        #expect(try fixture.call("POST", "/_/functions/todos:count").json?["count"] as? Int == 2)
        #expect(try fixture.call("GET", "/status").json?["todos"] as? Int == 2)  // Gust's handler, not Flask's 404
        #expect(try fixture.call("GET", "/_/health").json?["app"] as? String == "flask")

        // Under a prefix, the prefix is SCRIPT_NAME and Flask routes on the rest.
        let prefixed = try fixture.call("GET", "/web/todos/1")
        #expect(prefixed.json?["script_root"] as? String == "/web", "\(prefixed.text)")
        #expect(prefixed.json?["path"] as? String == "/todos/1")

        #expect(Self.ticks(fixture, app: "flask") >= 2, "the schedule runs beside Flask")

        let release = Gate(fixture, name: "release-flask")
        let stream = try Self.streamed(
            port: fixture.port, "/apps/flask/countdown?until=\(release.seen)", first: "three", release: release)
        #expect(stream.early.contains("three"), "\(stream.early)")
        #expect(!stream.early.contains("two"), "the first line came alone: \(stream.early)")
        #expect(stream.all.contains("one"), "\(stream.all)")
    }

    @Test(.scratchDirectory) func aFastAPIAppAtAPrefixAnswersWithItsRootPathAndLifespan() throws {
        let fixture = try PushFixture(app: "fast")
        let work = try fixture.workspace("fast")
        try work.write("requirements.txt", "fastapi\n")
        try work.write("main.py", """
            import asyncio
            import contextlib
            import os

            import gust
            from fastapi import FastAPI, Request
            from fastapi.responses import StreamingResponse

            @contextlib.asynccontextmanager
            async def lifespan(app):
                yield {'db': 'connected'}

            api = FastAPI(lifespan=lifespan)

            @api.get('/items/{item_id}')
            async def item(item_id: int, request: Request):
                return {'id': item_id, 'root_path': request.scope['root_path'], 'path': request.url.path,
                        'db': request.state.db}

            @api.post('/echo')
            async def echo(request: Request):
                return {'got': await request.json()}

            @api.get('/countdown')
            async def countdown(until: str):
                async def lines():
                    yield b'three\\n'
                    for _ in range(400):
                        if os.path.exists(until):
                            break
                        await asyncio.sleep(0.05)
                    yield b'two\\n'
                    yield b'one\\n'
                return StreamingResponse(lines(), media_type='text/plain')

            gust.mount('/api', api)

            @gust.op('hello')
            def hello(name='world'):
                return f'hello {name}'

            @gust.every('2s')
            def tick():
                print('mount-tick', flush=True)

            """)
        try work.commit("FastAPI beside Gust")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")

        let item = try fixture.call("GET", "/api/items/3")
        #expect(item.status == 200, "\(item.text)")
        #expect(item.json?["id"] as? Int == 3)
        #expect(item.json?["root_path"] as? String == "/api")
        #expect(item.json?["path"] as? String == "/api/items/3")
        #expect(item.json?["db"] as? String == "connected", "lifespan startup ran: \(item.text)")
        let echoed = try fixture.call("POST", "/api/echo", body: #"{"a": 1}"#, headers: ["Content-Type": "application/json"])
        #expect(echoed.text == #"{"got":{"a":1}}"#)
        #expect(try fixture.call("GET", "/api/nothing").status == 404)
        #expect(try fixture.call("GET", "/elsewhere").status == 404)  // outside the prefix: nothing serves it
        #expect(try fixture.call("POST", "/_/functions/hello", body: #"{"name": "fast"}"#).text == #""hello fast""#)
        #expect(Self.ticks(fixture, app: "fast") >= 2, "the schedule runs beside FastAPI")

        let release = Gate(fixture, name: "release-fast")
        let stream = try Self.streamed(
            port: fixture.port, "/apps/fast/api/countdown?until=\(release.seen)", first: "three", release: release)
        #expect(stream.early.contains("three"), "\(stream.early)")
        #expect(!stream.early.contains("two"), "the first line came alone: \(stream.early)")
        #expect(stream.all.contains("one"), "\(stream.all)")
    }

    @Test(.scratchDirectory) func anExpressAppAnswersItsRoutesBesideItsFunctions() throws {
        let fixture = try PushFixture(app: "express")
        let work = try fixture.workspace("express", copying: PushFixture.example("node-express"))
        // npm's registry may be out of reach: Express is vendored from Debian's node-express,
        // and package.json lists no dependencies, so the buildpack never calls npm.
        try Self.vendor("express", into: work.directory.appendingPathComponent("node_modules"))
        try work.write("package.json", #"{"name": "express-app", "version": "1.0.0", "main": "index.js", "private": true}"#)
        let index = try String(contentsOf: work.directory.appendingPathComponent("index.js"), encoding: .utf8)
        try work.write("index.js", index + """

            gust.mount('/web', web);
            gust.every('2s', function tick() { console.log('mount-tick'); });

            """)
        try work.commit("Express beside Gust")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(push.stderr.contains("schedule tidy every 1h"), "\(push.stderr)")

        #expect(try fixture.call("GET", "/").text == "Hello from Express, through Gust!\n")
        let todo = try fixture.call("GET", "/todos/1")
        #expect(todo.json?["baseUrl"] as? String == "", "\(todo.text)")
        #expect(todo.json?["path"] as? String == "/todos/1")
        let added = try fixture.call("POST", "/todos", body: #"{"title": "Buy tuna"}"#, headers: ["Content-Type": "application/json"])
        #expect(added.status == 201, "\(added.text)")
        #expect(try fixture.call("POST", "/_/functions/todos:count").json?["count"] as? Int == 2)
        #expect(try fixture.call("GET", "/status").json?["todos"] as? Int == 2)

        let prefixed = try fixture.call("GET", "/web/todos/1")
        #expect(prefixed.json?["baseUrl"] as? String == "/web", "\(prefixed.text)")
        #expect(prefixed.json?["path"] as? String == "/todos/1")

        #expect(Self.ticks(fixture, app: "express") >= 2, "the schedule runs beside Express")

        let release = Gate(fixture, name: "release-express")
        let stream = try Self.streamed(
            port: fixture.port, "/apps/express/countdown?until=\(release.seen)", first: "three", release: release)
        #expect(stream.early.contains("three"), "\(stream.early)")
        #expect(!stream.early.contains("two"), "the first line came alone: \(stream.early)")
        #expect(stream.all.contains("one"), "\(stream.all)")
    }

    /// A streamed answer keeps its instance until its last chunk: with one instance taking one
    /// call, an op sent while the stream is open runs only after it ends. One whose instance
    /// dies mid-answer is cut short, and the next call gets a new instance.
    @Test(.scratchDirectory) func aStreamedAnswerHoldsItsInstanceUntilItEnds() throws {
        let fixture = try PushFixture(app: "drip")
        let work = try fixture.workspace("drip")
        let release = Gate(fixture, name: "release-drip")
        try work.write("package.json", #"{"name": "drip", "version": "1.0.0", "main": "index.js", "private": true}"#)
        try work.write("index.js", """
            const fs = require('node:fs');
            const gust = require('gust');
            gust.mount('/', async (req, res) => {
              res.writeHead(200, { 'Content-Type': 'text/plain' });
              res.write('first\\n');
              if (req.url === '/die') {
                setTimeout(() => process.exit(3), 200);  // once 'first' is on its way
                return;
              }
              for (let i = 0; i < 400 && !fs.existsSync('\(release.seen)'); i++) await new Promise((r) => setTimeout(r, 50));
              res.end('second\\n');
            });
            // Whether the stream was over when this op ran.
            gust.op('ranAfterRelease', () => fs.existsSync('\(release.seen)'));

            """)
        try work.commit("Drip")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        #expect(try GustBinaries.gust(fixture.home, ["scale", "drip", "--min", "1", "--max", "1", "--concurrency", "1"]).status == 0)

        let connection = try RawConnection(port: fixture.port)
        connection.send("GET /apps/drip/drip HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        var early = ""
        let deadline = Date().addingTimeInterval(30)
        while !early.contains("first"), Date() < deadline {
            early += connection.drain()
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(early.contains("first"), "\(early)")
        let port = fixture.port
        let op = BackgroundCall { try HTTPClient.request(port: port, "POST", "/apps/drip/_/functions/ranAfterRelease") }
        Thread.sleep(forTimeInterval: 0.5)  // gives the op a chance to overtake, which it must not take
        release.create()
        #expect((early + connection.readAll(seconds: 30)).contains("second"))
        let ran = op.wait(seconds: 30)
        #expect((try? ran?.get())?.text == "true", "the op ran once the stream had ended: \(String(describing: ran))")

        // An instance that dies mid-answer: the answer is cut short; the next call starts another.
        let died = try RawConnection(port: fixture.port)
        died.send("GET /apps/drip/die HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        let cut = died.readAll(seconds: 30)
        #expect(cut.contains("first") && !cut.contains("0\r\n\r\n"), "\(cut)")
        let next = try fixture.call("POST", "/_/functions/ranAfterRelease")
        #expect(next.status == 200, "\(next.text)")
        // Sandboxed, the new instance has a socket directory of its own, without the gate file.
        #expect(next.text == (release.isPerInstance ? "false" : "true"), "\(next.text)")
    }

    /// Pushes a Node app `name` whose mount at `/` answers every request with 64 MB of `x`, 256
    /// writes of 256 KiB each waiting for `drain` as a well-behaved stream does; `headers` are its
    /// answer's, and `more` is appended to its code after the mount.
    static func pushSixtyFourMegabytes(_ fixture: PushFixture, name: String, headers: String, more: String = "") throws {
        let work = try fixture.workspace(name)
        try work.write("package.json", #"{"name": "\#(name)", "version": "1.0.0", "main": "index.js", "private": true}"#)
        try work.write("index.js", """
            const { once } = require('node:events');
            const gust = require('gust');
            const piece = Buffer.alloc(256 * 1024, 'x');
            gust.mount('/', async (req, res) => {
              req.resume();
              res.writeHead(200, \(headers));
              for (let i = 0; i < 256; i++) {
                if (!res.write(piece)) await once(res, 'drain');
              }
              res.end();
              console.log('sent ' + req.url);
            });
            \(more)

            """)
        try work.commit("64 MB")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
    }

    /// A client that reads a streamed answer slowly holds back the instance, not gustd's memory:
    /// gustd stops reading the answer from the instance while the client's connection takes no
    /// more (here 64 MB streamed and none of it read for 2 s), and the client then gets every byte.
    /// On the lane (a GET) and on Hummingbird's path (a POST with a body). (gustd used to read it
    /// all into memory for the client: a slow reader per streaming app could fill it.)
    @Test(.scratchDirectory) func aSlowClientHoldsBackAStreamedAnswerNotGustdsMemory() throws {
        let fixture = try PushFixture(app: "flood")
        try Self.pushSixtyFourMegabytes(fixture, name: "flood", headers: "{ 'Content-Type': 'application/octet-stream' }")
        let gustd = try #require(fixture.gustd)
        #expect(try fixture.call("GET", "/warm").status == 200, "the instance is up")
        let requests = [
            "lane": "GET /apps/flood/get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "Hummingbird": "POST /apps/flood/post HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
        ]
        for (path, request) in requests.sorted(by: { $0.key < $1.key }) {
            let before = RawConnection.residentBytes(gustd.pid)
            let client = try RawConnection(port: fixture.port)
            client.send(request)
            usleep(2_000_000)  // the instance streams; the client reads nothing
            let grown = RawConnection.residentBytes(gustd.pid) - before
            #expect(grown < 24_000_000, "\(path): gustd grew by \(grown / 1_000_000) MB holding a 64 MB answer for a client that read none")
            let body = RawConnection.chunkedBody(client.readAllBytes(seconds: 30))
            #expect(body?.count == 64 * 1024 * 1024 && body?.allSatisfy { $0 == UInt8(ascii: "x") } == true,
                "\(path): the whole answer arrives: \(body?.count ?? -1) bytes")
        }
        // A client that leaves while its answer is held back lets it go: the rest is read and
        // dropped, and the call ends then, not at its time limit (15 s) with its connection cut.
        for url in ["/get-gone", "/post-gone"] {
            let client = try RawConnection(port: fixture.port)
            client.send(url.hasPrefix("/get")
                ? "GET /apps/flood\(url) HTTP/1.1\r\nHost: x\r\n\r\n"
                : "POST /apps/flood\(url) HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
            usleep(1_000_000)
            withExtendedLifetime(client) {}  // closed here, unread
        }
        let done = AppLogMarks.wait(fixture.home, app: "flood", prefix: "sent ", seconds: 8) { $0.filter { $0.hasSuffix("-gone") }.count == 2 }
        #expect(done.filter { $0.hasSuffix("-gone") }.sorted() == ["/get-gone", "/post-gone"], "\(done)")
    }

    /// A client too slow to take a streamed answer within the function's time limit has the answer
    /// cut short there, and the instance is kept: the slowness was the client's. (Held back by the
    /// client, the stream used to count as the instance's failure and the instance was discarded,
    /// every call on it with it: any client could have an app's instances killed by reading slowly.)
    @Test(.scratchDirectory) func aClientTooSlowForTheTimeLimitLosesItsAnswerNotTheInstance() throws {
        let fixture = try PushFixture(app: "trickle", gustdArguments: ["--function-timeout", "3"])
        try Self.pushSixtyFourMegabytes(
            fixture, name: "trickle", headers: "{ 'Content-Type': 'application/octet-stream' }",
            // Made on the first call in each instance (a sandboxed instance is PID 1 in its own namespace).
            more: "let me; gust.op('me', () => (me ??= require('node:crypto').randomUUID()));")
        #expect(try GustBinaries.gust(fixture.home, ["scale", "trickle", "--min", "1", "--max", "1"]).status == 0)
        let instance = try fixture.call("POST", "/_/functions/me").text
        for request in [
            "GET /apps/trickle/get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "POST /apps/trickle/post HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
        ] {
            let client = try RawConnection(port: fixture.port)
            client.send(request)
            usleep(4_500_000)  // past the 3 s limit, reading nothing
            let got = client.readAllBytes(seconds: 10)
            #expect(RawConnection.chunkedBody(got) == nil, "the answer is cut short: \(got.count) bytes")
            let after = try fixture.call("POST", "/_/functions/me")
            #expect(after.status == 200 && after.text == instance, "the same instance answers: \(after.text), was \(instance)")
        }
    }

    /// An answer with a `Content-Length` is no way around that: past 1 MiB, a handler's answer is
    /// relayed as it comes, held back for a slow client like a chunked one, and an op's answer
    /// (which is never streamed) past 32 MiB is refused with 502 rather than held whole in gustd.
    @Test(.scratchDirectory) func aLargeAnswerWithItsLengthIsStreamedOrRefusedNotHeldWhole() throws {
        let fixture = try PushFixture(app: "bulk")
        try Self.pushSixtyFourMegabytes(
            fixture, name: "bulk", headers: "{ 'Content-Type': 'application/octet-stream', 'Content-Length': String(256 * piece.length) }",
            more: "gust.op('huge', () => 'x'.repeat(40 * 1024 * 1024));")
        let gustd = try #require(fixture.gustd)
        #expect(try fixture.call("GET", "/warm").status == 200, "the instance is up")

        let before = RawConnection.residentBytes(gustd.pid)
        let client = try RawConnection(port: fixture.port)
        client.send("GET /apps/bulk/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        usleep(2_000_000)  // the instance writes; the client reads nothing
        let grown = RawConnection.residentBytes(gustd.pid) - before
        #expect(grown < 24_000_000, "gustd grew by \(grown / 1_000_000) MB holding a 64 MB answer for a client that read none")
        let (head, body) = RawConnection.headAndBody(client.readAllBytes(seconds: 30))
        // Relayed as it comes, with the length the instance gave: a download keeps its progress, and a
        // cut-short answer shows as one.
        #expect(head.contains("\r\nContent-Length: 67108864\r\n") && !head.lowercased().contains("transfer-encoding"), "\(head)")
        #expect(body.count == 64 * 1024 * 1024, "the whole answer arrives: \(body.count) bytes")
        // The same through Hummingbird's path (a request with a body does not take the lane).
        let other = try RawConnection(port: fixture.port)
        other.send("GET /apps/bulk/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")
        let (otherHead, otherBody) = RawConnection.headAndBody(other.readAllBytes(seconds: 30))
        #expect(otherHead.contains("\r\ncontent-length: 67108864\r\n") || otherHead.contains("\r\nContent-Length: 67108864\r\n"), "\(otherHead)")
        #expect(!otherHead.lowercased().contains("transfer-encoding"), "\(otherHead)")
        #expect(otherBody.count == 64 * 1024 * 1024, "the whole answer arrives: \(otherBody.count) bytes")
        // A HEAD of it says its length too, and nothing follows the head.
        let asker = try RawConnection(port: fixture.port)
        asker.send("HEAD /apps/bulk/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let (headOnly, nothing) = RawConnection.headAndBody(asker.readAllBytes(seconds: 30))
        #expect(headOnly.lowercased().contains("\r\ncontent-length: 67108864\r\n") && nothing.isEmpty, "\(headOnly)")

        let op = try fixture.call("POST", "/_/functions/huge")
        #expect(op.status == 502, "\(op.status) \(op.text.prefix(300))")
        #expect(op.text.contains("larger than 32 MiB"), "\(op.text.prefix(300))")
        #expect(try fixture.call("GET", "/after").status == 200, "the app answers after it")
    }

    /// Copies Debian's `package` and everything it depends on from /usr/share/nodejs
    /// (or /usr/lib/nodejs) into `modules`, as `npm install` would have.
    static func vendor(_ package: String, into modules: URL) throws {
        let roots = ["/usr/share/nodejs", "/usr/lib/nodejs"]
        var pending = [package]
        var copied: Set<String> = []
        while let name = pending.popLast() {
            guard copied.insert(name).inserted else { continue }
            guard let source = roots.map({ "\($0)/\(name)" }).first(where: { FileManager.default.fileExists(atPath: "\($0)/package.json") }) else {
                throw VendorError(description: "\(name) is not in /usr/share/nodejs: install node-express (scripts/install-deps.sh)")
            }
            let target = modules.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            let copy = try Command.run("cp", ["-rL", source, target.path])
            guard copy.status == 0 else { throw VendorError(description: "cp \(source): \(copy.stderr)") }
            let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(source)/package.json")))
            pending += ((manifest as? [String: Any])?["dependencies"] as? [String: Any])?.keys.map { $0 } ?? []
        }
    }
}

/// A package `vendor` cannot copy.
struct VendorError: Error, CustomStringConvertible {
    var description: String
}
