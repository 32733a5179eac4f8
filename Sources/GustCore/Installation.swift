public import Foundation

/// Where Gust's own files are: its executables, `buildpacks/` and `hooks/`.
///
/// The hook installed into a repository and the forced SSH command must name
/// absolute paths, and the buildpacks ship beside the binaries. Looked up from
/// the running executable so that `.build/debug/gust` in a checkout and
/// `/usr/local/bin/gust` with `/usr/local/share/gust` both work.
public struct Installation: Sendable {
    /// Directory holding `gust`, `gust-receive` and `gustd`.
    public let binDirectory: URL
    /// Directory holding `buildpacks/` and `hooks/`.
    public let shareDirectory: URL

    public var buildpacks: URL { shareDirectory.appendingPathComponent("buildpacks") }
    public var hooks: URL { shareDirectory.appendingPathComponent("hooks") }
    public func executable(_ name: String) -> URL { binDirectory.appendingPathComponent(name) }

    public init(binDirectory: URL, shareDirectory: URL) {
        self.binDirectory = binDirectory
        self.shareDirectory = shareDirectory
    }

    /// `GUST_SHARE` wins; otherwise the nearest ancestor of the executable that
    /// holds `buildpacks/`, or `PREFIX/share/gust`.
    public static func current() throws(GustError) -> Installation {
        let executable = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]).standardizedFileURL
        let bin = executable.deletingLastPathComponent()
        let environment = ProcessInfo.processInfo.environment
        if let share = environment["GUST_SHARE"], !share.isEmpty {
            return Installation(binDirectory: bin, shareDirectory: URL(fileURLWithPath: share))
        }
        var candidate = bin
        for _ in 0..<6 {
            if hasBuildpacks(candidate) { return Installation(binDirectory: bin, shareDirectory: candidate) }
            let shared = candidate.appendingPathComponent("share/gust")
            if hasBuildpacks(shared) { return Installation(binDirectory: bin, shareDirectory: shared) }
            candidate = candidate.deletingLastPathComponent()
        }
        throw GustError.internal(
            "Cannot find Gust's buildpacks near \(bin.path). Set GUST_SHARE to the directory that holds buildpacks/ and hooks/."
        )
    }

    private static func hasBuildpacks(_ dir: URL) -> Bool {
        FileManager.default.fileExists(atPath: dir.appendingPathComponent("buildpacks/python/bin/detect").path)
    }
}
