import Foundation
import GustCore
import GustTesting
import Testing

/// `gust releases export APP vN --oci DIR | --archive FILE.tar` with the real tools: skopeo and
/// umoci read the layout, podman loads and runs it, and the container answers the shared protocol
/// cases (buildpacks/protocol-tests, read publicly by run.py --url) as the same release under a
/// real gustd does, refusing every spelling of the internal surface. The stack is a real
/// `gust stacks build` (`StackCache`), and the pushes build on it.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct OCIImageTests {
    static let fixtureApps = GustBinaries.sourceRoot.appendingPathComponent("buildpacks/protocol-tests/apps")
    static let runPy = GustBinaries.sourceRoot.appendingPathComponent("buildpacks/protocol-tests/run.py").path

    /// Pushes the protocol fixture app of `runtime` as `app` (created if needed): v`version` builds on `stack`, the home's only one.
    static func pushFixtureApp(_ fixture: PushFixture, app: String, runtime: String, stack: Stack, version: Int = 1) throws {
        if app != fixture.app {
            let created = try GustBinaries.gust(fixture.home, ["apps", "create", app])
            #expect(created.status == 0, "\(created.output)")
        }
        let work = try fixture.workspace(app, copying: fixtureApps.appendingPathComponent(runtime))
        try work.commit("The \(runtime) fixture")
        let push = try work.push(to: fixture.home.repository(try AppName(app)).path)
        #expect(push.status == 0, "\(push.output)")
        #expect(try Store(home: fixture.home).release(try AppName(app), version: version)?.stack == stack.reference.description)
    }

    static func export(_ fixture: PushFixture, _ app: String, _ version: String, _ options: [String]) throws -> [String: Any] {
        let result = try GustBinaries.gust(fixture.home, ["releases", "export", app, version, "--json"] + options)
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw FixtureFailure("gust releases export \(app) \(version) \(options) failed: \(result.output)")
        }
        return object
    }

    @Test(.scratchDirectory) func theImageAnswersTheProtocolCasesAsGustdDoesAndIsReproducible() throws {
        let root = ScratchDirectory.current
        let fixture = try PushFixture()
        let stack = try StackCache.install(["bookworm"], into: fixture.home)[0]
        try Self.pushFixtureApp(fixture, app: "cats", runtime: "python", stack: stack)
        try Self.pushFixtureApp(fixture, app: "dogs", runtime: "node", stack: stack)
        let podman = try Podman(in: root)
        defer { podman.removeEverything() }

        var stackLayers: Set<String> = []
        for (app, runtime) in [("cats", "python"), ("dogs", "node")] {
            // Three exports, each a fresh `gust` process with nothing cached: one digest.
            let layout = root.appendingPathComponent("\(app)-oci")
            let archive = root.appendingPathComponent("\(app).tar")
            let first = try Self.export(fixture, app, "v1", ["--oci", layout.path])
            let second = try Self.export(fixture, app, "v1", ["--oci", root.appendingPathComponent("\(app)-oci-again").path])
            let archived = try Self.export(fixture, app, "v1", ["--archive", archive.path])
            let digest = try #require(first["digest"] as? String)
            #expect(digest.hasPrefix("sha256:") && second["digest"] as? String == digest && archived["digest"] as? String == digest)
            let layers = first["layers"] as? [String] ?? []
            #expect(layers.count == 3)
            stackLayers.insert(layers.first ?? "")

            // The real tools accept it.
            let reference = "localhost/gust/\(app):v1"
            let inspected = try Command.run("skopeo", ["inspect", "oci:\(layout.path):\(reference)"])
            #expect(inspected.status == 0, "\(inspected.output)")
            #expect(inspected.stdout.contains(digest), "\(inspected.stdout)")
            let inspectedArchive = try Command.run("skopeo", ["inspect", "--raw", "oci-archive:\(archive.path)"])
            #expect(inspectedArchive.status == 0, "\(inspectedArchive.output)")
            let umoci = try Command.run("umoci", ["stat", "--image", "\(layout.path):\(reference)"])
            #expect(umoci.status == 0 && umoci.stdout.contains("gust: the image entrypoint"), "\(umoci.output)")

            let loaded = try podman.load(archive)
            #expect(loaded.status == 0 && loaded.output.contains(reference), "\(loaded.output)")
            let user = try podman.run(["image", "inspect", "--format", "{{.Config.User}} {{.Config.WorkingDir}} {{.Config.ExposedPorts}}", reference])
            #expect(user.stdout.contains("65534:65534 /app map[8080/tcp:{}]"), "\(user.output)")

            // The same cases, read as a caller reads them, pass against the container and against gustd.
            let container = try podman.start(reference, name: "gust-test-\(app)-\(UUID().uuidString.prefix(6))")
            try podman.waitHealthy(container.name, port: container.port)
            let inContainer = try Command.run("python3", [Self.runPy, "--url", "http://127.0.0.1:\(container.port)", runtime], timeout: 300)
            #expect(inContainer.status == 0, "container: \(inContainer.output)\n\(podman.logs(container.name))")
            let underGustd = try Command.run("python3", [Self.runPy, "--url", "http://127.0.0.1:\(fixture.port)/apps/\(app)", runtime], timeout: 300)
            #expect(underGustd.status == 0, "gustd: \(underGustd.output)")
            #expect(inContainer.stdout.split(separator: "\n").last == underGustd.stdout.split(separator: "\n").last)

            // `schedule NAME` runs one schedule once and exits; an unknown one fails, naming what there is.
            let scheduled = try podman.run(["run", "--rm", reference, "schedule", "meow"])
            #expect(scheduled.status == 0 && scheduled.output.contains("schedule meow ran"), "\(scheduled.output)")
            let unknown = try podman.run(["run", "--rm", reference, "schedule", "purr"])
            #expect(unknown.status == 1 && unknown.output.contains("has no schedule 'purr'; it has: meow"), "\(unknown.output)")
        }
        // Both releases are on one stack: one stack layer, byte for byte.
        #expect(stackLayers.count == 1, "\(stackLayers)")
    }

    /// The image's config, read from a layout as an engine reads it: index → manifest → config.
    static func imageConfig(_ layout: URL) throws -> [String: Any] {
        func blob(_ digest: String) throws -> [String: Any] {
            let data = try Data(contentsOf: layout.appendingPathComponent("blobs/sha256/\(digest.dropFirst("sha256:".count))"))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: layout.appendingPathComponent("index.json"))) as? [String: Any])
        let manifest = try blob(try #require(((index["manifests"] as? [[String: Any]])?.first?["digest"]) as? String))
        return try blob(try #require((manifest["config"] as? [String: Any])?["digest"] as? String))
    }

    @Test(.scratchDirectory) func secretConfigIsLeftOutUnlessAskedAndAReleaseWithoutAStackIsRefused() throws {
        let root = ScratchDirectory.current
        let fixture = try PushFixture()
        let work = try fixture.workspace("cats", copying: Self.fixtureApps.appendingPathComponent("python"))
        try work.commit("The python fixture")
        #expect(try work.push(to: fixture.remote).status == 0)

        // Built on the host (no stack there yet, none recorded): nothing to ship it on, and the message says what to do.
        let refused = try GustBinaries.gust(fixture.home, ["releases", "export", "cats", "v1", "--oci", root.appendingPathComponent("none").path])
        #expect(refused.status != 0)
        #expect(refused.output.contains("not on a stack") && refused.output.contains("gust stacks build") && refused.output.contains("push again"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("none/index.json").path))

        #expect(try Store(home: fixture.home).release(try AppName("cats"), version: 1)?.stack == nil)

        // With a stack, the next push builds on it.
        let stack = try StackCache.install(["bookworm"], into: fixture.home)[0]
        try work.write("NOTE.txt", "onto a stack\n")
        try work.commit("Onto a stack")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try Store(home: fixture.home).release(try AppName("cats"), version: 2)?.stack == stack.reference.description)
        #expect(try GustBinaries.gust(fixture.home, ["config", "set", "cats", "PLAIN=visible"]).status == 0)
        #expect(try GustBinaries.gust(fixture.home, ["config", "set", "cats", "--secret", "API_KEY=hunter2-kitten"]).status == 0)
        let version = try #require(try fixture.releases().first?["version"] as? Int)
        #expect(version == 4)

        let plain = root.appendingPathComponent("plain"), withSecrets = root.appendingPathComponent("with-secrets")
        let exported = try GustBinaries.gust(fixture.home, ["releases", "export", "cats", "v4", "--oci", plain.path])
        #expect(exported.status == 0 && exported.stdout.contains("Left out (secret): API_KEY"), "\(exported.output)")
        let env = try #require((try Self.imageConfig(plain)["config"] as? [String: Any])?["Env"] as? [String])
        #expect(env.contains("PLAIN=visible") && env.contains("PORT=8080") && env.contains("GUST_APP=cats") && env.contains("GUST_RELEASE=v4"), "\(env)")
        #expect(!env.contains { $0.hasPrefix("API_KEY") }, "\(env)")
        let blobs = try FileManager.default.contentsOfDirectory(atPath: plain.appendingPathComponent("blobs/sha256").path)
        for blob in blobs {
            let handle = try FileHandle(forReadingFrom: plain.appendingPathComponent("blobs/sha256/\(blob)"))
            defer { try? handle.close() }
            if let size = try? handle.seekToEnd(), size < 10_000_000 {
                try handle.seek(toOffset: 0)
                #expect(!String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self).contains("hunter2-kitten"), "blob \(blob) holds the secret")
            }
        }

        _ = try Self.export(fixture, "cats", "v4", ["--oci", withSecrets.path, "--with-secrets"])
        let secretEnv = try #require((try Self.imageConfig(withSecrets)["config"] as? [String: Any])?["Env"] as? [String])
        #expect(secretEnv.contains("API_KEY=hunter2-kitten") && secretEnv.contains("PLAIN=visible"), "\(secretEnv)")
        let config = try #require(try Self.imageConfig(plain)["config"] as? [String: Any])
        #expect(config["User"] as? String == "65534:65534")
        #expect(config["Entrypoint"] as? [String] == ["/usr/bin/python3", "-I", "/gust/entrypoint.py"] && config["Cmd"] as? [String] == ["serve"])
        #expect((config["Labels"] as? [String: String])?["io.gust.stack"] == "bookworm@1")

        // A private app's callers need a token under gustd; the image cannot check one, and the export says so.
        #expect(!exported.stderr.contains("is private"))
        #expect(try GustBinaries.gust(fixture.home, ["apps", "set", "cats", "--private"]).status == 0)
        let privately = try GustBinaries.gust(fixture.home, ["releases", "export", "cats", "v4", "--oci", root.appendingPathComponent("private").path])
        #expect(privately.status == 0 && privately.stderr.contains("cats is private") && privately.stderr.contains("authentication"), "\(privately.output)")
    }

    @Test(.scratchDirectory) func recordsReachTheGustServerOverHTTPSWithAnAppTokenOrFailSayingWhatToSet() throws {
        let root = ScratchDirectory.current
        let (cert, key) = try TLSTools.selfSigned(["gust.test", "*.gust.test"], in: root)
        let fixture = try PushFixture(gustdArguments: [
            "--domain", "gust.test", "--https", "127.0.0.1:0", "--tls-cert", cert.path, "--tls-key", key.path, "--no-acme",
        ])
        let https = try TLSTools.httpsPort(fixture.home)
        let stack = try StackCache.install(["bookworm"], into: fixture.home)[0]
        let work = try fixture.workspace("records")
        try work.write("__init__.py", """
            import gust

            @gust.op('adopt')
            def adopt(name):
                return gust.records.save('cat', {'name': name})

            @gust.op('count')
            def count():
                return len(gust.records.find('cat'))

            """)
        try work.commit("Cats with records")
        #expect(try work.push(to: fixture.remote).status == 0)
        #expect(try Store(home: fixture.home).release(try AppName("cats"), version: 1)?.stack == stack.reference.description)
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!token.isEmpty)
        let archive = root.appendingPathComponent("cats.tar")
        _ = try Self.export(fixture, "cats", "v1", ["--archive", archive.path])
        let podman = try Podman(in: root)
        defer { podman.removeEverything() }
        #expect(try podman.load(archive).status == 0)
        let image = "localhost/gust/cats:v1"

        // No record store given: the call fails, naming what to set.
        let alone = try podman.start(image, name: "gust-test-alone-\(UUID().uuidString.prefix(6))")
        try podman.waitHealthy(alone.name, port: alone.port)
        let failed = try HTTPClient.request(port: alone.port, "POST", "/_/functions/adopt", body: #"{"name": "Tom"}"#)
        #expect(failed.status == 503, "\(failed.text)")
        #expect(failed.text.contains("GUST_RECORDS_URL") && failed.text.contains("GUST_RECORDS_TOKEN") && failed.text.contains("gust tokens create"), "\(failed.text)")

        // Given the app's HTTPS address on its Gust server and an app token: the records are the server's.
        let network = ["--network", "slirp4netns:allow_host_loopback=true", "--add-host", "cats.gust.test:10.0.2.2",
                       "-v", "\(cert.path):/etc/gust-test-ca.pem:ro", "-e", "SSL_CERT_FILE=/etc/gust-test-ca.pem",
                       "-e", "GUST_RECORDS_URL=https://cats.gust.test:\(https)"]
        let joined = try podman.start(image, name: "gust-test-records-\(UUID().uuidString.prefix(6))", options: network + ["-e", "GUST_RECORDS_TOKEN=\(token)"])
        try podman.waitHealthy(joined.name, port: joined.port)
        let adopted = try HTTPClient.request(port: joined.port, "POST", "/_/functions/adopt", body: #"{"name": "Tom"}"#)
        #expect(adopted.status == 200 && adopted.json?["name"] as? String == "Tom" && adopted.json?["_id"] != nil, "\(adopted.text)\n\(podman.logs(joined.name))")
        let onServer = try fixture.call("GET", "/_/records/cat", headers: ["X-Auth-Token": token])
        #expect(onServer.status == 200 && onServer.text.contains("\"Tom\""), "\(onServer.text)")
        #expect(try HTTPClient.request(port: joined.port, "POST", "/_/functions/count").text == "1")
        // The public /_/records of the container is the server's too, for a caller with a token.
        #expect(try HTTPClient.request(port: joined.port, "GET", "/_/records/cat", headers: ["X-Auth-Token": token]).text.contains("\"Tom\""))
        #expect(try HTTPClient.request(port: joined.port, "GET", "/_/records/cat").status == 401)
        // The runtime never sees the app token.
        let environ = try podman.run(["exec", joined.name, "sh", "-c",
                                      "for p in $(cat /proc/1/task/*/children); do tr '\\0' '\\n' < /proc/$p/environ; done"])
        #expect(environ.stdout.contains("GUST_RECORDS_SOCKET=") && !environ.stdout.contains(token), "\(environ.output)")

        // A wrong token is the server's 401, passed on.
        let wrong = try podman.start(image, name: "gust-test-wrong-\(UUID().uuidString.prefix(6))", options: network + ["-e", "GUST_RECORDS_TOKEN=wrong"])
        try podman.waitHealthy(wrong.name, port: wrong.port)
        let refused = try HTTPClient.request(port: wrong.port, "POST", "/_/functions/adopt", body: #"{"name": "Eve"}"#)
        #expect(refused.status == 401, "\(refused.text)")
    }
}
