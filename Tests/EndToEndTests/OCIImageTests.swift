import Foundation
import GustCore
import GustTesting
import Testing

/// `gust releases export APP vN --oci DIR | --archive FILE.tar` with the real tools: skopeo and
/// umoci read the layout, podman loads and runs it, and the container answers the shared protocol
/// cases (buildpacks/protocol-tests, read publicly by run.py --url) as the same release under a
/// real gustd does, refusing every spelling of the internal surface. The stack is
/// `StackFixture`'s (INTERIM until `gust stacks build` is merged: see there).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct OCIImageTests {
    static let fixtureApps = GustBinaries.sourceRoot.appendingPathComponent("buildpacks/protocol-tests/apps")
    static let runPy = GustBinaries.sourceRoot.appendingPathComponent("buildpacks/protocol-tests/run.py").path

    /// Pushes the protocol fixture app of `runtime` as `app` (created if needed) and marks v`version` as built on `stack`.
    static func pushFixtureApp(_ fixture: PushFixture, app: String, runtime: String, stack: Stack, version: Int = 1) throws {
        if app != fixture.app {
            let created = try GustBinaries.gust(fixture.home, ["apps", "create", app])
            #expect(created.status == 0, "\(created.output)")
        }
        let work = try fixture.workspace(app, copying: fixtureApps.appendingPathComponent(runtime))
        try work.commit("The \(runtime) fixture")
        let push = try work.push(to: fixture.home.repository(try AppName(app)).path, environment: ["PATH": StackFixture.hostPythonPath])
        #expect(push.status == 0, "\(push.output)")
        try StackFixture.markRelease(try AppName(app), version: version, stack: stack.reference, in: fixture.home)
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
        let stack = try StackFixture.install(into: fixture.home)
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
}
