public import Foundation
public import GustCore

/// The built `gust`, `gust-receive` and `gustd`, next to the test bundle in `.build/…/debug`.
public enum GustBinaries {
    public static var directory: URL {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // The test runner may live inside the .xctest bundle directory.
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("gust").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    public static var gust: String { directory.appendingPathComponent("gust").path }
    public static var gustReceive: String { directory.appendingPathComponent("gust-receive").path }
    public static var gustd: String { directory.appendingPathComponent("gustd").path }

    /// The checkout's root, where buildpacks/, hooks/ and examples/ are.
    public static var sourceRoot: URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    /// Runs `gust --home HOME args…`.
    @discardableResult
    public static func gust(_ home: GustHome, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        try Command.run(gust, arguments + ["--home", home.path], environment: environment)
    }
}
