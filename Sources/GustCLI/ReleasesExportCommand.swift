import ArgumentParser
import Foundation
import GustCore

extension ReleasesCommand {
    /// `gust releases export APP vN --oci DIR | --archive FILE.tar`: the release as an OCI image
    /// (`ImageExportOptions`). The Kubernetes manifests' flags join this command on their own branch.
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a release as an OCI image that podman, Docker or Kubernetes runs.",
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
                """
        )
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The release, e.g. v3.") var version: String
        @OptionGroup var image: ImageExportOptions

        func validate() throws {
            try image.check()
            guard image.wanted else { throw ValidationError("Say what to export: --oci DIR or --archive FILE.tar.") }
        }

        func run() throws {
            let name = try parseAppName(app)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let release = try store.requireRelease(name, version: try parseVersion(version))
            try image.writeImage(release, store: store, json: output.json)
        }
    }
}
