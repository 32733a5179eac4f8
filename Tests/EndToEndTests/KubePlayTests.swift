import Foundation
import GustCore
import GustTesting
import Testing

/// `podman kube play` runs what `gust releases export APP vN --kubernetes`
/// prints (the Deployment; podman skips the Service, autoscaler and CronJobs)
/// with the image, and the app answers on its health path with its config in
/// its environment and its secret read from the Secret the manifests name (not
/// from the manifests); a CronJob's `args` run one schedule in the same image.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct KubePlayTests {
    /// The image the manifests run, in `podman`'s store, as `reference`.
    ///
    /// The seam for the OCI export (issue 14, item 2): today a throwaway image
    /// built here from busybox that keeps the image contract (serves
    /// `/_/health` on `$PORT`; `schedule NAME` runs one schedule and exits; CGIs
    /// echo `$GREETING` and `$API_KEY`, the config var and the secret the test sets). Once `gust releases
    /// export APP vN --oci DIR` exists, this becomes that export plus
    /// `skopeo copy oci:DIR containers-storage:REFERENCE`, with the sample app's own routes.
    static func obtainImage(_ podman: Podman, reference: String, in dir: URL) throws {
        let root = dir.appendingPathComponent("image-root")
        let fm = FileManager.default
        for path in ["bin", "www/_", "www/cgi-bin", "tmp"] {
            try fm.createDirectory(at: root.appendingPathComponent(path), withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: try Command.which("busybox"), toPath: root.appendingPathComponent("bin/busybox").path)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("bin/sh").path, withDestinationPath: "busybox")
        try "ok\n".write(to: root.appendingPathComponent("www/_/health"), atomically: true, encoding: .utf8)
        let files = [
            ("entry.sh", """
                #!/bin/sh
                if [ "$1" = schedule ]; then printf 'ran schedule %s\\n' "$2"; exit 0; fi
                exec /bin/busybox httpd -f -p "${PORT:-8080}" -h /www
                """),
            ("www/cgi-bin/greeting", """
                #!/bin/sh
                printf 'Content-Type: text/plain\\r\\n\\r\\n'
                printf '%s' "$GREETING"
                """),
            ("www/cgi-bin/api-key", """
                #!/bin/sh
                printf 'Content-Type: text/plain\\r\\n\\r\\n'
                printf '%s' "$API_KEY"
                """),
        ]
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try (text + "\n").write(to: url, atomically: true, encoding: .utf8)
            try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
        let tar = dir.appendingPathComponent("image-root.tar")
        let packed = try Command.run("tar", ["-C", root.path, "-cf", tar.path, "."])
        #expect(packed.status == 0, "\(packed.output)")
        let imported = try podman.run(["import", "--change", #"ENTRYPOINT ["/bin/sh","/entry.sh"]"#, tar.path, reference])
        #expect(imported.status == 0, "\(imported.output)")
    }

    /// A home whose app `demo` has a built v1 with config, scale, limits and a schedule: what the export reads.
    static func home(at dir: URL, greeting: String) throws -> GustHome {
        let home = GustHome(path: dir.appendingPathComponent("home").path)
        let store = try Store(home: home)
        let app = try AppName("demo")
        _ = try store.createApp(app)
        _ = try store.recordRelease(app, NewRelease(
            status: .built, buildpack: "python", description: "Deploy abc1234",
            config: ["GREETING": greeting, "API_KEY": "s3cret-value-never-shown"], secretNames: ["API_KEY"]
        ))
        try store.setLive(app, version: 1)
        try store.setScale(app, ScaleSettings(min: 1, max: 3, concurrency: 4, idleSeconds: 120))
        try store.setLimits(app, AppLimits(memory: 128 << 20, cpuMillis: 500, pids: 64, tmp: 16 << 20))
        try store.replaceSchedules(app, release: 1, with: [
            StoredSchedule(app: app, name: "nightly_report", kind: "every", spec: "5m", anchor: Date(), release: 1),
        ])
        return home
    }

    /// The Deployment published on 127.0.0.1:`port` as a Service would make it reachable (podman has no Services).
    static func publish(_ yaml: String, port: Int) throws -> String {
        let script = """
            import sys, yaml
            docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
            for d in docs:
                if d["kind"] != "Deployment": continue
                c = d["spec"]["template"]["spec"]["containers"][0]
                c["ports"][0].update(hostPort=int(sys.argv[1]), hostIP="127.0.0.1")
            yaml.safe_dump_all(docs, sys.stdout)
            """
        let result = try Command.run("python3", ["-c", script, String(port)], input: yaml)
        #expect(result.status == 0, "\(result.output)")
        return result.stdout
    }

    static func get(_ url: String) throws -> CommandResult {
        try Command.run("curl", ["-sS", "-f", "-m", "5", url], timeout: 30)
    }

    @Test(.scratchDirectory) func kubePlayRunsTheExportedDeploymentAndItAnswers() throws {
        #expect(try Command.run("podman", ["kube", "play", "--help"]).status == 0)
        let dir = ScratchDirectory.current
        let greeting = "a: b\n- c !!python/object '\" end"
        let home = try Self.home(at: dir, greeting: greeting)
        let reference = "localhost/gust-test/demo:v1"
        let export = try GustBinaries.gust(home, ["releases", "export", "demo", "v1", "--kubernetes", "--image", reference])
        #expect(export.status == 0, "\(export.output)")
        #expect(!export.output.contains("s3cret-value-never-shown"))
        #expect(export.stderr.contains("kubectl create secret generic demo-secrets --from-literal=API_KEY=..."))
        #expect(export.stdout.contains("kind: CronJob"))

        let podman = try Podman(in: dir)
        defer { podman.removeEverything() }
        try Self.obtainImage(podman, reference: reference, in: dir)
        // The Secret the user creates (`kubectl create secret generic demo-secrets …`), as podman keeps one:
        // a JSON object of base64 values, under the name the manifests refer to.
        let secretValue = "from the cluster's Secret: \"quoted\" 'value'"
        let secret = dir.appendingPathComponent("demo-secrets.json")
        try JSONEncoder().encode(["API_KEY": Data(secretValue.utf8).base64EncodedString()]).write(to: secret)
        let created = try podman.run(["secret", "create", "demo-secrets", secret.path])
        #expect(created.status == 0, "\(created.output)")
        let port = try Self.freePort()
        let manifests = dir.appendingPathComponent("play.yaml")
        try Self.publish(export.stdout, port: port).write(to: manifests, atomically: true, encoding: .utf8)
        let played = try podman.run(["kube", "play", manifests.path])
        #expect(played.status == 0, "\(played.output)")
        defer { _ = try? podman.run(["kube", "down", manifests.path]) }

        var health = try Self.get("http://127.0.0.1:\(port)/_/health")
        let deadline = Date().addingTimeInterval(60)
        while health.status != 0, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.5)
            health = try Self.get("http://127.0.0.1:\(port)/_/health")
        }
        #expect(health.status == 0 && health.stdout == "ok\n", "\(health.output)")
        let echoed = try Self.get("http://127.0.0.1:\(port)/cgi-bin/greeting")
        #expect(echoed.stdout == greeting, "\(echoed.output)")
        let secretRead = try Self.get("http://127.0.0.1:\(port)/cgi-bin/api-key")
        #expect(secretRead.stdout == secretValue, "\(secretRead.output)")

        // What the CronJob would run, in the same image: its args, one run, and the container exits.
        let args = try Command.run("python3", ["-c", """
            import json, sys, yaml
            job = next(d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] == "CronJob")
            print(json.dumps(job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]))
            """], input: export.stdout)
        let words = try JSONDecoder().decode([String].self, from: Data(args.stdout.utf8))
        #expect(words == ["schedule", "nightly_report"])
        let ran = try podman.run(["run", "--rm", "--network", "none", reference] + words)
        #expect(ran.stdout == "ran schedule nightly_report\n", "\(ran.output)")
    }

    /// A port the kernel just handed out on 127.0.0.1.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw PortError() }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct PortError: Error {}
}
