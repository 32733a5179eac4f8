import ArgumentParser
import Foundation
import GustBuild
import GustCore

/// The flags of `gust releases export` that write the release as an OCI image (docs/oci.md), kept
/// apart from the manifests' flags so that each reads on its own and the command only dispatches.
struct ImageExportOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Write an OCI image layout of the release into this new or empty directory.", valueName: "dir"))
    var oci: String?
    @Option(help: ArgumentHelp("Write the image layout as one tar (an oci-archive for `podman load`).", valueName: "file.tar"))
    var archive: String?
    @Flag(help: "Put secret config vars in the image's environment too (by default they are left out).")
    var withSecrets = false

    /// Whether an image was asked for.
    var wanted: Bool { oci != nil || archive != nil }

    func check() throws {
        if oci != nil, archive != nil { throw ValidationError("Give one of --oci DIR or --archive FILE.tar, not both.") }
        if withSecrets, !wanted { throw ValidationError("--with-secrets goes with --oci or --archive.") }
    }

    /// Writes the image and says what it wrote (JSON with `json`).
    func writeImage(_ release: Release, store: Store, json: Bool) throws {
        let image = try ReleaseImage(release: release, home: store.home, installation: try Installation.current())
        let started = ContinuousClock.now
        let exported: ReleaseImage.Exported
        let destination: URL
        if let oci {
            destination = URL(fileURLWithPath: oci)
            exported = try image.writeLayout(to: destination, withSecrets: withSecrets)
        } else {
            destination = URL(fileURLWithPath: archive!)
            exported = try image.writeArchive(to: destination, withSecrets: withSecrets)
        }
        if try store.requireApp(release.app).isPrivate {
            FileHandle.standardError.write(Data((
                "gust: note: \(release.app) is private: gustd asks its callers for a token, but the image cannot check Gust's tokens "
                    + "and answers every caller. Keep it behind your cluster's own authentication.\n").utf8))
        }
        if json { return print(try Formatting.json(exported)) }
        let took = started.duration(to: .now)
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        print("Exported v\(release.version) of \(release.app) (stack \(image.stack.reference)) to \(destination.path) in \(String(format: "%.1f", seconds)) s")
        print("Image:   \(exported.reference)")
        print("Digest:  \(exported.digest)")
        print("Size:    \(ByteCount(exported.size))")
        let leftOut = release.secretNames.filter { release.config[$0] != nil }.sorted()
        if !withSecrets, !leftOut.isEmpty {
            print("Left out (secret): \(leftOut.joined(separator: ", ")); give them to the container yourself, or export --with-secrets.")
        }
        if archive != nil {
            print("Run it:  podman load -i \(destination.path) && podman run --rm -p 127.0.0.1:8080:8080 \(exported.reference)")
        }
    }
}
