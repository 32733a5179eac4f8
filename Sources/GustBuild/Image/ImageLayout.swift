#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import GustCore

/// An OCI image layout being written: `oci-layout`, `blobs/sha256/…` and, last, `index.json`
/// (image-spec's image-layout.md). Why a type: every blob is named by its digest, which is known
/// only once its bytes are written, so each goes to a temporary name and is renamed into place;
/// and every JSON document is written one way only (sorted keys, no escaped slashes), so the same
/// content always has the same digest.
struct ImageLayout {
    /// What a manifest or an index says of a blob.
    struct Descriptor {
        var mediaType: String
        var digest: String
        var size: Int
        var annotations: [String: String]? = nil

        var json: [String: Any] {
            var object: [String: Any] = ["mediaType": mediaType, "digest": digest, "size": size]
            if let annotations { object["annotations"] = annotations }
            return object
        }
    }

    static let layerType = "application/vnd.oci.image.layer.v1.tar"
    static let configType = "application/vnd.oci.image.config.v1+json"
    static let manifestType = "application/vnd.oci.image.manifest.v1+json"
    static let indexType = "application/vnd.oci.image.index.v1+json"

    let directory: URL
    var blobs: URL { directory.appendingPathComponent("blobs/sha256") }

    /// `directory` must not exist or be empty.
    init(creating directory: URL) throws {
        let manager = FileManager.default
        if let existing = try? manager.contentsOfDirectory(atPath: directory.path), !existing.isEmpty {
            throw GustError("\(directory.path) is not empty: give a new directory for the image layout.")
        }
        self.directory = directory
        try manager.createDirectory(at: directory.appendingPathComponent("blobs/sha256"), withIntermediateDirectories: true)
    }

    /// A layer written by `fill` through a `LayerWriter`, streamed to disk and named by its digest.
    func writeLayer(clampTime: Int, _ fill: (LayerWriter) throws -> Void) throws -> Descriptor {
        let temporary = blobs.appendingPathComponent(".layer-\(UUID().uuidString.prefix(8)).tmp")
        do {
            let writer = try LayerWriter(to: temporary, clampTime: clampTime)
            try fill(writer)
            let (digest, size) = try writer.finish()
            try place(temporary, as: digest)
            return Descriptor(mediaType: Self.layerType, digest: digest, size: size)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// A layer already written elsewhere (a cached stack layer), linked (or copied) in.
    func addLayer(file: URL, digest: String, size: Int) throws -> Descriptor {
        let target = blobs.appendingPathComponent(String(digest.dropFirst("sha256:".count)))
        if !FileManager.default.fileExists(atPath: target.path), link(file.path, target.path) != 0 {
            try FileManager.default.copyItem(at: file, to: target)
        }
        return Descriptor(mediaType: Self.layerType, digest: digest, size: size)
    }

    /// A JSON blob (a config, a manifest).
    func writeJSON(_ object: [String: Any], mediaType: String) throws -> Descriptor {
        let data = try Self.encode(object)
        let digest = "sha256:" + Hex.lower(SHA256.hash(data: data))
        let target = blobs.appendingPathComponent(String(digest.dropFirst("sha256:".count)))
        try data.write(to: target, options: .atomic)
        return Descriptor(mediaType: mediaType, digest: digest, size: data.count)
    }

    /// Ends the layout: `oci-layout`, then `index.json` naming `manifest`.
    func finish(manifest: Descriptor) throws {
        try Self.encode(["imageLayoutVersion": "1.0.0"]).write(to: directory.appendingPathComponent("oci-layout"), options: .atomic)
        let index: [String: Any] = ["schemaVersion": 2, "mediaType": Self.indexType, "manifests": [manifest.json]]
        try Self.encode(index).write(to: directory.appendingPathComponent("index.json"), options: .atomic)
    }

    static func encode(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    private func place(_ temporary: URL, as digest: String) throws {
        let target = blobs.appendingPathComponent(String(digest.dropFirst("sha256:".count)))
        if FileManager.default.fileExists(atPath: target.path) {
            try FileManager.default.removeItem(at: temporary)
        } else if rename(temporary.path, target.path) != 0 {
            throw GustError("Cannot name the layer \(digest): \(String(cString: strerror(errno)))")
        }
    }
}
