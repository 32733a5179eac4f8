import ArgumentParser
import Foundation
import GustCore
import GustManifests

extension ReleasesCommand {
    /// `gust releases export APP vN`: a release to run outside Gust, as an OCI image
    /// (`--oci DIR`, `--archive FILE.tar`: `ImageExportOptions`, docs/oci.md) or as
    /// manifests for the cluster an app moves to (`--kubernetes [--knative]`:
    /// `ManifestExportOptions`, docs/scaling-out.md). The manifests only read the
    /// store and print, so a key scoped to the app may ask for them over SSH.
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a release to run outside Gust: an OCI image, or Kubernetes or Knative manifests.",
            discussion: """
                --oci DIR writes an OCI image layout (oci-layout, index.json, blobs/sha256) into DIR, which must be \
                new or empty; --archive FILE.tar writes the same layout as one tar, which `podman load -i FILE.tar` \
                loads as localhost/gust/APP:vN. The image holds the release's stack (one layer, shared by every \
                release on that stack), its slug under /app, and Gust's entrypoint, which serves on $PORT (8080) \
                what gustd serves for the app: POST /_/functions/NAME, the handlers, /_/health, never the runtime's \
                internal endpoints. `… schedule NAME` runs one schedule once (a CronJob). gust.records reaches this \
                server over HTTPS with GUST_RECORDS_URL and GUST_RECORDS_TOKEN (an app token). Config vars are the \
                image's environment; secret ones are left out unless --with-secrets. The same release always \
                exports to the same digest. See docs/oci.md.

                --kubernetes prints YAML for `kubectl apply -f -`: a Deployment (scale min as replicas), \
                a Service, a HorizontalPodAutoscaler up to scale max, and a CronJob per schedule, running \
                the release's image with its config as env, its limits as resources and health checks on \
                /_/health. With --knative, one Knative Service (min-scale, max-scale, containerConcurrency) \
                takes the place of the Deployment, Service and autoscaler. Secret config vars are read from \
                the Secret APP-secrets, which the export never contains: the command to create it is printed \
                to stderr, with everything else that did not carry over. See docs/scaling-out.md.
                """
        )
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The release, e.g. v3.") var version: String
        @OptionGroup var image: ImageExportOptions
        @OptionGroup var manifests: ManifestExportOptions

        /// Whether it only prints to stdout: over SSH nothing else is allowed (`SSHAccess`).
        /// The image export's flags (`--oci`, `--archive`) write files, so they are not.
        var printsOnly: Bool { manifests.kubernetes && !image.wanted }

        func validate() throws {
            try image.check()
            try manifests.check()
            if image.wanted && manifests.kubernetes {
                throw ValidationError("Export one thing at a time: an image (--oci/--archive), or manifests (--kubernetes) that name it with --image.")
            }
            guard image.wanted || manifests.kubernetes else {
                throw ValidationError("Say what to export: --oci DIR or --archive FILE.tar for an OCI image, --kubernetes for the release's manifests (add --knative for a Knative Service).")
            }
        }

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let release = try store.requireRelease(name, version: try parseVersion(version))
            if image.wanted { return try image.writeImage(release, store: store, json: output.json) }
            let exported = try manifests.printManifests(release, store: store)
            for line in exported.notes { FileHandle.standardError.write(Data("gust: note: \(line)\n".utf8)) }
            if let hint = exported.secretHint {
                FileHandle.standardError.write(Data("gust: create the Secret before applying: \(hint)\n".utf8))
            }
        }
    }
}

extension ReleasesCommand.Export: AppScopedCommand {}

/// The flags of `gust releases export` that make manifests, kept apart from the
/// image export's so that each reads on its own.
struct ManifestExportOptions: ParsableArguments {
    @Flag(help: "Print Kubernetes manifests of the release (a Deployment, Service, autoscaler and CronJobs) to stdout.")
    var kubernetes = false
    @Flag(help: "With --kubernetes: a Knative Service in place of the Deployment, Service and autoscaler.")
    var knative = false
    @Option(help: ArgumentHelp("The image the cluster pulls (default: localhost/gust/APP:vN, the local name).", valueName: "ref"))
    var image: String?
    @Option(help: ArgumentHelp("The namespace of every object (default: none, so kubectl's).", valueName: "ns"))
    var namespace: String?
    @Option(help: ArgumentHelp(
        "The Gust server's HTTPS address for gust.records in the container, e.g. https://cats.example.com; its token is read from the Secret.",
        valueName: "url"))
    var recordsURL: String?

    func check() throws {
        if knative && !kubernetes { throw ValidationError("--knative goes with --kubernetes.") }
        if let namespace, !KubernetesName.isLabel(namespace) {
            throw ValidationError("'\(namespace.prefix(80))' is not a namespace: lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit.")
        }
        if let image, image.isEmpty || image.count > 512 || image.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            throw ValidationError("'\(image.prefix(80))' is not an image reference: write it as registry.example.com/team/app:v3 (no spaces).")
        }
        if let recordsURL, !(recordsURL.hasPrefix("https://") || recordsURL.hasPrefix("http://")) || URL(string: recordsURL)?.host == nil {
            throw ValidationError("'\(recordsURL.prefix(80))' is not an address: write the app's address on the Gust server, like https://cats.example.com.")
        }
    }

    /// Prints the release's manifests to stdout and returns them for their notes.
    func printManifests(_ release: Release, store: Store) throws -> KubernetesManifests {
        guard release.status != .failed else {
            throw GustError("v\(release.version) of \(release.app) failed to build: there is nothing to run.", hint: "Export a release that built (see `gust releases \(release.app)`).")
        }
        let secret = Set(release.secretNames)
        let scale = try store.scale(release.app)
        var schedules = try store.schedules(release.app)
        var schedulesNote: String?
        // The store knows the schedules of the release that last started; another release's may differ.
        if let declared = schedules.first?.release, declared != release.version {
            schedulesNote = "the schedules gustd knows are v\(declared)'s, not v\(release.version)'s: no CronJobs are made; export v\(declared), or deploy v\(release.version) once and export again."
            schedules = []
        }
        let exported = ExportedRelease(
            app: release.app, version: release.version, image: image, namespace: namespace, scale: scale,
            concurrencyPerInstance: release.buildpack == "python" ? 1 : scale.concurrency,
            limits: try store.effectiveLimits(release.app),
            config: release.config.filter { !secret.contains($0.key) }, secretNames: release.secretNames.sorted(),
            schedules: schedules, schedulesNote: schedulesNote, recordsURL: recordsURL
        )
        let manifests = try KubernetesManifests(exported, target: knative ? .knative : .kubernetes)
        print(manifests.render(), terminator: "")
        return manifests
    }
}
