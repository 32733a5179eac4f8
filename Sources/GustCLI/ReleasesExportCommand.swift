import ArgumentParser
import Foundation
import GustBuild
import GustCore

extension ReleasesCommand {
    /// `gust releases export APP vN --oci DIR | --archive FILE.tar`: the release as an OCI image.
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
        @Option(help: ArgumentHelp("Write an OCI image layout into this new or empty directory.", valueName: "dir"))
        var oci: String?
        @Option(help: ArgumentHelp("Write the image layout as one tar (an oci-archive for `podman load`).", valueName: "file.tar"))
        var archive: String?
        @Flag(help: "Put secret config vars in the image's environment too (by default they are left out).")
        var withSecrets = false

        func validate() throws {
            guard (oci == nil) != (archive == nil) else {
                throw ValidationError("Give one of --oci DIR or --archive FILE.tar.")
            }
        }

        func run() throws {
            let name = try parseAppName(app)
            let number = try parseVersion(version)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            let release = try store.requireRelease(name, version: number)
            let image = try ReleaseImage(release: release, home: store.home, installation: try Installation.current())
            let started = ContinuousClock.now
            let exported: ReleaseImage.Exported
            let destination: String
            if let oci {
                let url = URL(fileURLWithPath: oci)
                exported = try image.writeLayout(to: url, withSecrets: withSecrets)
                destination = url.path
            } else {
                let url = URL(fileURLWithPath: archive!)
                exported = try image.writeArchive(to: url, withSecrets: withSecrets)
                destination = url.path
            }
            if output.json { return print(try Formatting.json(exported)) }
            let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
            print("Exported v\(number) of \(name) (stack \(image.stack.reference)) to \(destination) in \(String(format: "%.1f", seconds)) s")
            print("Image:   \(exported.reference)")
            print("Digest:  \(exported.digest)")
            print("Size:    \(ByteCount(exported.size))")
            let leftOut = release.secretNames.filter { release.config[$0] != nil }.sorted()
            if !withSecrets, !leftOut.isEmpty {
                print("Left out (secret): \(leftOut.joined(separator: ", ")); give them to the container yourself, or export --with-secrets.")
            }
            if archive != nil {
                print("Run it:  podman load -i \(destination) && podman run --rm -p 127.0.0.1:8080:8080 \(exported.reference)")
            }
        }
    }
}
