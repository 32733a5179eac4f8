import Foundation
import GustCore
import GustTesting
import Testing

/// `gust releases export APP vN --kubernetes` as a user runs it: YAML alone on
/// stdout (for `| kubectl apply -f -`), notes and the Secret's command on
/// stderr, secret values nowhere, mistakes refused with what to do.
@Suite struct ReleaseExportTests {
    static func home() throws -> (GustHome, Store) {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        let store = try Store(home: home)
        let app = try AppName("cats")
        _ = try store.createApp(app)
        try store.recordRelease(app, NewRelease(
            status: .built, buildpack: "node", description: "Deploy 1",
            config: ["GREETING": "hi", "TOKEN": "s3cret-value-never-shown"], secretNames: ["TOKEN"]
        ))
        try store.recordRelease(app, NewRelease(status: .built, buildpack: "node", description: "Deploy 2"))
        try store.recordRelease(app, NewRelease(status: .failed, description: "Deploy 3", error: "build failed"))
        try store.recordRelease(app, NewRelease(status: .built, buildpack: "python", description: "Deploy 4"))
        try store.setScale(app, ScaleSettings(min: 0, max: 5, concurrency: 8, idleSeconds: 90))
        try store.setLive(app, version: 1)
        try store.replaceSchedules(app, release: 1, with: [
            StoredSchedule(app: app, name: "tick", kind: "every", spec: "1m", anchor: Date(), release: 1),
            StoredSchedule(app: app, name: "odd", kind: "every", spec: "45m", anchor: Date(), release: 1),
        ])
        return (home, store)
    }

    @Test(.scratchDirectory) func yamlGoesToStdoutAndNotesToStderr() throws {
        let (home, _) = try Self.home()
        let result = try GustBinaries.gust(home, ["releases", "export", "cats", "v1", "--kubernetes", "--namespace", "prod",
                                                 "--records-url", "https://cats.example.com"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.hasPrefix("# Kubernetes manifests of cats v1"))
        #expect(result.stdout.contains(#"image: "localhost/gust/cats:v1""#))
        #expect(result.stdout.contains("namespace: prod"))
        #expect(result.stdout.contains("name: cats-tick"))
        #expect(!result.output.contains("s3cret-value-never-shown"))
        #expect(result.stderr.contains("kubectl create secret generic cats-secrets --namespace prod --from-literal=TOKEN=... --from-literal=GUST_RECORDS_TOKEN=..."), "\(result.stderr)")
        #expect(result.stderr.contains("schedule \"odd\" (every \"45m\") has no CronJob"), "\(result.stderr)")
        #expect(!result.stdout.split(separator: "\n").contains { $0.hasPrefix("gust:") })
    }

    /// The app's scale from the store; a Python release's instances take one call at a time, a Node one's `--concurrency`.
    @Test(.scratchDirectory) func knativeTakesTheAppsScaleAndThePythonRuntimesOneCallAtATime() throws {
        let (home, _) = try Self.home()
        let node = try GustBinaries.gust(home, ["releases", "export", "cats", "v1", "--kubernetes", "--knative"])
        #expect(node.status == 0, "\(node.output)")
        for line in ["autoscaling.knative.dev/min-scale: \"0\"", "autoscaling.knative.dev/max-scale: \"5\"",
                     "autoscaling.knative.dev/scale-to-zero-pod-retention-period: \"90s\"", "containerConcurrency: 8"] {
            #expect(node.stdout.contains(line), "\(line)")
        }
        let python = try GustBinaries.gust(home, ["releases", "export", "cats", "v4", "--kubernetes", "--knative"])
        #expect(python.status == 0, "\(python.output)")
        #expect(python.stdout.contains("containerConcurrency: 1\n"))
        #expect(python.stderr.contains("containerConcurrency is 1, not the app's concurrency 8"), "\(python.stderr)")
    }

    @Test(.scratchDirectory) func schedulesOfAnotherReleaseAreNotPassedOff() throws {
        let (home, _) = try Self.home()
        let result = try GustBinaries.gust(home, ["releases", "export", "cats", "v2", "--kubernetes"])
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.stdout.contains("kind: CronJob"))
        #expect(result.stderr.contains("the schedules gustd knows are v1's, not v2's"), "\(result.stderr)")
    }

    @Test(.scratchDirectory) func mistakesAreRefusedWithWhatToDo() throws {
        let (home, _) = try Self.home()
        let cases: [([String], String)] = [
            (["cats", "v1"], "Say what to export: --oci DIR or --archive FILE.tar for an OCI image, --kubernetes"),
            (["cats", "v1", "--kubernetes", "--oci", "/tmp/x"], "Export one thing at a time"),
            (["cats", "v1", "--knative"], "--knative goes with --kubernetes"),
            (["cats", "v1", "--kubernetes", "--namespace", "Prod_1"], "is not a namespace"),
            (["cats", "v1", "--kubernetes", "--image", "a b"], "is not an image reference"),
            (["cats", "v1", "--kubernetes", "--records-url", "cats.example.com"], "is not an address"),
            (["cats", "v3", "--kubernetes"], "failed to build"),
            (["cats", "v9", "--kubernetes"], "v9"),
        ]
        for (arguments, message) in cases {
            let result = try GustBinaries.gust(home, ["releases", "export"] + arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(!result.stdout.contains("kind:"))
        }
    }
}
