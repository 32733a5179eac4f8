import Foundation
import GustCore
import GustTesting
import Testing

/// `podman kube play` runs what `gust releases export APP vN --kubernetes`
/// prints (the Deployment; podman skips the Service, autoscaler and CronJobs)
/// with the release's real image (`gust releases export APP vN --archive`,
/// `podman load`), pushed onto a real stack: the app answers its own op and
/// handler and `/_/health` under the manifests' securityContext (read-only
/// root, non-root user, no capabilities, only the `/tmp` emptyDir writable),
/// with its config in its environment and its secret read from the Secret the
/// manifests name (not from the manifests); a CronJob's `args` run the
/// schedule once in the same image.
@Suite(.serialized, .timeLimit(.minutes(20)))
struct KubePlayTests {
    /// The sample app: an op and a handler that report what the container gives it, and a schedule that writes to /tmp.
    static let appSource = """
        import os
        import tempfile

        import gust


        @gust.op('settings')
        def settings():
            return {'greeting': os.environ.get('GREETING'), 'api_key': os.environ.get('API_KEY')}


        def writable(directory):
            try:
                with tempfile.NamedTemporaryFile(dir=directory):
                    return True
            except OSError:
                return False


        def read_only(mount_point):
            options = []
            with open('/proc/self/mountinfo') as mounts:
                for fields in (line.split() for line in mounts):
                    if fields[4] == mount_point:
                        options = fields[5].split(',')  # the last mount there is the one seen
            return 'ro' in options


        @gust.handler('inside')
        def inside(request):
            with open('/proc/self/status') as status:
                effective = next(line.split()[1] for line in status if line.startswith('CapEff:'))
            return {'uid': os.getuid(), 'capabilities': effective, 'root_read_only': read_only('/'),
                    'tmp_read_only': read_only('/tmp'), 'app_writable': writable('/app'), 'tmp_writable': writable('/tmp')}


        @gust.every('5m')
        def nightly_report():
            path = os.path.join(tempfile.mkdtemp(), 'report.txt')
            with open(path, 'w') as report:
                report.write(os.environ.get('GREETING', ''))
            print('nightly report of', os.path.getsize(path), 'bytes written to /tmp')

        """

    /// The objects of `yaml` as JSON (PyYAML reads them as a cluster would).
    static func objects(_ yaml: String) throws -> [[String: Any]] {
        let result = try Command.run("python3", ["-c", """
            import json, sys, yaml
            print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))
            """], input: yaml)
        guard result.status == 0 else { throw FixtureFailure("PyYAML: \(result.output)") }
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    }

    /// The Deployment published on 127.0.0.1:`port` as a Service would make it reachable (podman has no Services).
    static func publish(_ yaml: String, port: Int) throws -> String {
        try rewrite(yaml, """
            for d in docs:
                if d["kind"] != "Deployment": continue
                c = d["spec"]["template"]["spec"]["containers"][0]
                c["ports"][0].update(hostPort=int(sys.argv[1]), hostIP="127.0.0.1")
            out = docs
            """, String(port))
    }

    /// The CronJob's pod, as its Job would start it, as a bare Pod named `name` (podman plays no CronJobs).
    static func cronJobPod(_ yaml: String, name: String) throws -> String {
        try rewrite(yaml, """
            job = next(d for d in docs if d["kind"] == "CronJob")
            out = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": sys.argv[1]},
                    "spec": job["spec"]["jobTemplate"]["spec"]["template"]["spec"]}]
            """, name)
    }

    private static func rewrite(_ yaml: String, _ body: String, _ argument: String) throws -> String {
        let script = "import sys, yaml\ndocs = [d for d in yaml.safe_load_all(sys.stdin) if d]\n" + body + "\nyaml.safe_dump_all(out, sys.stdout)\n"
        let result = try Command.run("python3", ["-c", script, argument], input: yaml)
        #expect(result.status == 0, "\(result.output)")
        return result.stdout
    }

    /// The container `podman kube play` made for `container` of the pod whose name starts with `pod`
    /// (podman names them POD-pod-N-CONTAINER or POD-CONTAINER, by version and kind).
    static func containerName(_ podman: Podman, pod: String, container: String) throws -> String {
        let names = try podman.run(["ps", "-a", "--format", "{{.Names}}"]).stdout.split(separator: "\n").map(String.init)
        return try #require(names.first { $0.hasPrefix(pod + "-") && $0.hasSuffix("-" + container) }, "\(names)")
    }

    static func json(_ answer: HTTPResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(answer.text.utf8)) as? [String: Any], "\(answer.status) \(answer.text)")
    }

    @Test(.scratchDirectory) func kubePlayRunsTheExportedReleaseUnderItsSecurityContextAndItAnswers() throws {
        let dir = ScratchDirectory.current
        let fixture = try PushFixture(app: "demo")
        let stack = try StackCache.install(["bookworm"], into: fixture.home)[0]
        let work = try fixture.workspace("demo")
        try work.write("__init__.py", Self.appSource)
        try work.commit("The demo app")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let greeting = "a: b\n- c !!python/object '\" end"
        let configured = try GustBinaries.gust(fixture.home, ["config", "set", "demo", "GREETING=\(greeting)"])
        #expect(configured.status == 0, "\(configured.output)")
        let secretSet = try GustBinaries.gust(fixture.home, ["config", "set", "demo", "--secret", "API_KEY=s3cret-value-never-shown"])
        #expect(secretSet.status == 0, "\(secretSet.output)")
        let store = try fixture.store()
        let app = try AppName("demo")
        try store.setScale(app, ScaleSettings(min: 1, max: 3, concurrency: 4, idleSeconds: 120))
        try store.setLimits(app, AppLimits(memory: 256 << 20, cpuMillis: 500, pids: 64, tmp: 16 << 20))
        let release = try #require(try store.release(app, version: 3))
        #expect(release.stack == stack.reference.description && release.config["GREETING"] == greeting)
        #expect(try store.schedules(app).map(\.name) == ["nightly_report"])

        // The image, as `podman load` takes it, and the manifests that run it.
        let podman = try Podman(in: dir)
        defer { podman.removeEverything() }
        let archive = dir.appendingPathComponent("demo.tar")
        let exported = try GustBinaries.gust(fixture.home, ["releases", "export", "demo", "v3", "--archive", archive.path])
        #expect(exported.status == 0, "\(exported.output)")
        let reference = "localhost/gust/demo:v3"
        let loaded = try podman.load(archive)
        #expect(loaded.status == 0 && loaded.output.contains(reference), "\(loaded.output)")
        let export = try GustBinaries.gust(fixture.home, ["releases", "export", "demo", "v3", "--kubernetes", "--image", reference])
        #expect(export.status == 0, "\(export.output)")
        #expect(!export.output.contains("s3cret-value-never-shown"))
        #expect(export.stderr.contains("kubectl create secret generic demo-secrets --from-literal=API_KEY=..."))
        let objects = try Self.objects(export.stdout)
        let deployment = try #require(objects.first { $0["kind"] as? String == "Deployment" })
        let podSpec = try #require(((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let web = try #require((podSpec["containers"] as? [[String: Any]])?.first)
        let context = try #require(web["securityContext"] as? [String: Any])
        #expect(context["readOnlyRootFilesystem"] as? Bool == true && context["runAsNonRoot"] as? Bool == true
                && context["allowPrivilegeEscalation"] as? Bool == false, "\(context)")
        #expect((context["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"], "\(context)")

        // The Secret the user creates (`kubectl create secret generic demo-secrets …`), as podman keeps one:
        // a JSON object of base64 values, under the name the manifests refer to.
        let secretValue = "from the cluster's Secret: \"quoted\" 'value'"
        let secret = dir.appendingPathComponent("demo-secrets.json")
        try JSONEncoder().encode(["API_KEY": Data(secretValue.utf8).base64EncodedString()]).write(to: secret)
        let created = try podman.run(["secret", "create", "demo-secrets", secret.path])
        #expect(created.status == 0, "\(created.output)")
        let port = try LoopbackPort.free()
        let manifests = dir.appendingPathComponent("play.yaml")
        try Self.publish(export.stdout, port: port).write(to: manifests, atomically: true, encoding: .utf8)
        let played = try podman.run(["kube", "play", manifests.path])
        #expect(played.status == 0, "\(played.output)")
        defer { _ = try? podman.run(["kube", "down", manifests.path]) }

        // The app's own op and handler, its health path, its config and secret: as the manifests set them.
        let container = try Self.containerName(podman, pod: "demo", container: "web")
        try podman.waitHealthy(container, port: port, seconds: 120)
        let settings = try Self.json(try HTTPClient.request(port: port, "POST", "/_/functions/settings", body: "{}"))
        #expect(settings["greeting"] as? String == greeting, "\(settings)")
        #expect(settings["api_key"] as? String == secretValue, "\(settings)")
        // Under the securityContext: not root, no capabilities, the root read-only, /tmp (the emptyDir) writable.
        let inside = try Self.json(try HTTPClient.request(port: port, "GET", "/inside"))
        #expect(inside["uid"] as? Int == 65534 && inside["capabilities"] as? String == "0000000000000000", "\(inside)")
        #expect(inside["root_read_only"] as? Bool == true && inside["app_writable"] as? Bool == false, "\(inside)")
        #expect(inside["tmp_read_only"] as? Bool == false && inside["tmp_writable"] as? Bool == true, "\(inside)\n\(podman.logs(container))")

        // What the CronJob runs, its pod as its Job would start it: `schedule nightly_report`, once, then it exits.
        let cronJob = try #require(objects.first { $0["kind"] as? String == "CronJob" })
        let jobPod = try #require(((((cronJob["spec"] as? [String: Any])?["jobTemplate"] as? [String: Any])?["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let jobContainer = try #require((jobPod["containers"] as? [[String: Any]])?.first)
        #expect(jobContainer["args"] as? [String] == ["schedule", "nightly_report"], "\(jobContainer)")
        let jobManifest = dir.appendingPathComponent("job.yaml")
        try Self.cronJobPod(export.stdout, name: "demo-nightly").write(to: jobManifest, atomically: true, encoding: .utf8)
        let started = try podman.run(["kube", "play", jobManifest.path])
        #expect(started.status == 0, "\(started.output)")
        defer { _ = try? podman.run(["kube", "down", jobManifest.path]) }
        let jobName = try Self.containerName(podman, pod: "demo-nightly", container: try #require(jobContainer["name"] as? String))
        let waited = try podman.run(["wait", jobName], timeout: 120)
        let output = podman.logs(jobName)
        #expect(waited.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(waited.output)\n\(output)")
        #expect(output.contains("nightly report of \(greeting.utf8.count) bytes written to /tmp"), "\(output)")
        #expect(output.contains("schedule nightly_report ran"), "\(output)")
    }
}
