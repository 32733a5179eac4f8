#if canImport(Glibc)
import Glibc
#endif
public import Foundation
public import GustCore

/// A release as an OCI image (docs/oci.md): its stack's root as one layer, its slug under `/app`
/// as another, Gust's entrypoint as a third, and a config that starts the entrypoint as a user
/// other than root with the release's config vars as its environment.
///
/// Why here and not in the CLI: an image is made from a release's artifact and its stack, as a
/// deploy is, and tests and benchmarks make one without a terminal. Reproducible: every byte
/// comes from the release, its stack and the entrypoint, never from the clock or the host (see
/// `LayerWriter`), so exporting one release twice gives the same manifest digest.
public struct ReleaseImage {
    /// What an export wrote.
    public struct Exported: Sendable, Encodable {
        /// `sha256:…` of the manifest: the image's digest.
        public var digest: String
        /// The name it loads as (`localhost/gust/cats:v3`).
        public var reference: String
        /// The layers' digests: stack, slug, Gust's entrypoint.
        public var layers: [String]
        /// Bytes of every blob (the layout's size less its two small files).
        public var size: Int
    }

    public static let port = 8080
    /// Debian's `nobody`: the image never runs the app as root.
    public static let user = "65534:65534"
    public static let appDirectory = "app"

    public let release: Release
    public let stack: Stack
    let artifact: URL
    let rootfs: URL
    let entrypoint: URL
    let home: GustHome

    /// Finds what the image is made of, or says why this release cannot have one.
    public init(release: Release, home: GustHome, installation: Installation) throws {
        let name = "v\(release.version) of \(release.app)"
        guard release.status != .failed, let digest = release.artifact else {
            throw GustError("\(name) failed to build: it has no slug to export. Export a release that built (`gust releases \(release.app)`).")
        }
        let artifact = home.artifact(digest: digest, fileExtension: Artifacts.fileExtension)
        guard FileManager.default.fileExists(atPath: artifact.path) else {
            throw GustError("\(name)'s artifact was pruned (`gust releases prune`): it cannot be exported. Export a newer release, or push again.")
        }
        guard let recorded = release.stack else {
            throw GustError(
                "\(name) was built on this server's own system, not on a stack, so there is no root filesystem to ship it with.",
                hint: "Build a stack (`gust stacks build`) and push again: the new release is built on the stack and exports."
            )
        }
        let reference = try Stack.Reference(parsing: recorded)
        guard let stack = try StackCatalog(home: home).stack(reference) else {
            throw GustError(
                "\(name) runs on the stack \(reference), which is not on this server (\(home.stack(reference).path) is missing or unfinished).",
                hint: "Build it again as root (`\(MissingStack(reference: reference, releases: []).command)`; a backup leaves stacks out), or push again to build on a stack this server has."
            )
        }
        self.release = release
        self.home = home
        self.stack = stack
        self.artifact = artifact
        rootfs = stack.rootfs(in: home)
        entrypoint = installation.buildpacks.appendingPathComponent("image/entrypoint.py")
        guard FileManager.default.fileExists(atPath: entrypoint.path) else {
            throw GustError.internal("Gust's image entrypoint is missing at \(entrypoint.path): reinstall Gust.")
        }
    }

    /// The name the image loads as: `localhost/gust/APP:vN`.
    public var reference: String { "localhost/gust/\(release.app):v\(release.version)" }

    /// Writes the image layout into `directory` (new or empty).
    public func writeLayout(to directory: URL, withSecrets: Bool) throws -> Exported {
        let layout = try ImageLayout(creating: directory)
        let stackTime = Int(stack.createdAt.timeIntervalSince1970)
        let releaseTime = Int(release.createdAt.timeIntervalSince1970)
        let stackLayer = try layout.writeLayer(clampTime: stackTime) { try $0.addTree(rootfs, keepOwners: true, scratch: ["tmp", "var/tmp"]) }
        let slugLayer = try layout.writeLayer(clampTime: releaseTime) { writer in
            try writer.addDirectory(Self.appDirectory)
            try writer.addArtifact(artifact, prefix: Self.appDirectory)
        }
        let script = try Data(contentsOf: entrypoint)
        let gustLayer = try layout.writeLayer(clampTime: releaseTime) { writer in
            try writer.addDirectory("gust")
            try writer.addFile("gust/entrypoint.py", contents: script)
        }
        let layers = [stackLayer, slugLayer, gustLayer]
        let config = try layout.writeJSON(try configuration(layers: layers, withSecrets: withSecrets), mediaType: ImageLayout.configType)
        var manifest = try layout.writeJSON([
            "schemaVersion": 2, "mediaType": ImageLayout.manifestType, "config": config.json, "layers": layers.map(\.json),
            "annotations": labels,
        ], mediaType: ImageLayout.manifestType)
        manifest.annotations = ["org.opencontainers.image.ref.name": reference]
        try layout.finish(manifest: manifest)
        return Exported(digest: manifest.digest, reference: reference, layers: layers.map(\.digest),
                        size: layers.map(\.size).reduce(config.size + manifest.size, +))
    }

    /// Writes the layout as one tar (an `oci-archive` for `podman load`) at `file`, replacing it.
    public func writeArchive(to file: URL, withSecrets: Bool) throws -> Exported {
        let parent = file.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString.prefix(8)).layout")
        let partial = parent.appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        defer {
            try? FileManager.default.removeItem(at: staging)
            try? FileManager.default.removeItem(at: partial)
        }
        let exported = try writeLayout(to: staging, withSecrets: withSecrets)
        let writer = try LayerWriter(to: partial, clampTime: Int(release.createdAt.timeIntervalSince1970))
        try writer.addTree(staging, keepOwners: false)
        _ = try writer.finish()
        guard rename(partial.path, file.path) == 0 else {
            throw GustError("Cannot write \(file.path): \(String(cString: strerror(errno)))")
        }
        return exported
    }

    // MARK: The config

    /// The environment: what the entrypoint needs, then the release's config vars (secret ones,
    /// decrypted, only when asked: the store keeps them sealed).
    func environment(withSecrets: Bool) throws -> [String] {
        var fixed: [(String, String)] = [
            ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            ("HOME", "/\(Self.appDirectory)"), ("PORT", String(Self.port)),
            ("GUST_APP", release.app.rawValue), ("GUST_RELEASE", "v\(release.version)"), ("GUST_APP_DIR", "/\(Self.appDirectory)"),
        ]
        if release.config["LANG"] == nil { fixed.append(("LANG", "C.UTF-8")) }
        let reserved = Set(fixed.map(\.0))
        let values = withSecrets ? try release.openedConfig(home: home) : release.config
        let config = values.sorted { $0.key < $1.key }.filter { name, _ in
            !reserved.contains(name) && !name.hasPrefix("GUST_") && (withSecrets || !release.secretNames.contains(name))
        }
        return (fixed + config).map { "\($0.0)=\($0.1)" }
    }

    var labels: [String: String] {
        var labels = [
            "org.opencontainers.image.title": release.app.rawValue,
            "org.opencontainers.image.version": "v\(release.version)",
            "org.opencontainers.image.created": Self.timestamp(release.createdAt),
            "org.opencontainers.image.description": release.description,
            "io.gust.app": release.app.rawValue,
            "io.gust.release": "v\(release.version)",
            "io.gust.stack": stack.reference.description,
        ]
        if let commit = release.commit {
            labels["org.opencontainers.image.revision"] = commit
            labels["io.gust.commit"] = commit
        }
        if let buildpack = release.buildpack { labels["io.gust.buildpack"] = buildpack }
        return labels
    }

    func configuration(layers: [ImageLayout.Descriptor], withSecrets: Bool) throws -> [String: Any] {
        let created = Self.timestamp(release.createdAt)
        return [
            "created": created,
            "architecture": Self.architecture,
            "os": "linux",
            "config": [
                "User": Self.user,
                "ExposedPorts": ["\(Self.port)/tcp": [String: Any]()],
                "Env": try environment(withSecrets: withSecrets),
                "Entrypoint": ["/usr/bin/python3", "-I", "/gust/entrypoint.py"],
                "Cmd": ["serve"],
                "WorkingDir": "/\(Self.appDirectory)",
                "Labels": labels,
                "StopSignal": "SIGTERM",
            ] as [String: Any],
            "rootfs": ["type": "layers", "diff_ids": layers.map(\.digest)] as [String: Any],
            "history": [
                ["created": Self.timestamp(stack.createdAt), "created_by": "gust stacks build \(stack.suite) (\(stack.reference))"],
                ["created": created, "created_by": "gust: the slug of v\(release.version) (\(release.description))"],
                ["created": created, "created_by": "gust: the image entrypoint"],
            ],
        ]
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
    }

    static var architecture: String {
        #if arch(x86_64)
        "amd64"
        #elseif arch(arm64)
        "arm64"
        #else
        "unknown"
        #endif
    }
}
