import Foundation
@testable import GustDaemon
import GustTesting
import Testing

/// gustd starts a Python release's zygote without `.gust/start`'s shell (`DirectLauncher.zygoteStart`);
/// these run the script the buildpack writes, for real, against a stand-in for the venv's Python
/// that records what it was given, so the two cannot drift apart.
@Suite struct ZygoteStartTests {
    @Test(arguments: ["", "/opt/extra"])
    func aZygoteStartsAsTheStartScriptWould(pythonPath: String) throws {
        let release = try Self.release()
        defer { try? FileManager.default.removeItem(at: release) }
        var given = ["PATH": "/usr/bin:/bin", "GUST_APP": "cats", "GUST_ZYGOTE_FD": "3", "LANG": "C.UTF-8"]
        if !pythonPath.isEmpty { given["PYTHONPATH"] = pythonPath }

        let script = try Command.run(
            "/usr/bin/env", ["-i"] + given.map { "\($0.key)=\($0.value)" } + [release.path + "/.gust/start"], timeout: 60
        )
        #expect(script.status == 0, "\(script.output)")
        let (arguments, environment) = try Self.recorded(in: release)

        let start = DirectLauncher.zygoteStart(
            command: ".gust/start", directory: release, releaseDirectory: release.path, environment: given
        )
        #expect(start.executable == ".venv/bin/python")
        #expect(start.arguments == arguments)
        #expect(start.environment == environment)
        #expect(environment["PYTHONPATH"] == release.path + "/.gust/runtime" + (pythonPath.isEmpty ? "" : ":" + pythonPath))
    }

    @Test func anotherWebProcessOrASlugWithoutAVenvRunsAsItIs() throws {
        let release = try Self.release()
        defer { try? FileManager.default.removeItem(at: release) }
        let given = ["PATH": "/usr/bin:/bin"]
        let other = DirectLauncher.zygoteStart(command: "bin/web", directory: release, releaseDirectory: "/app", environment: given)
        #expect(other.executable == "bin/web" && other.arguments.isEmpty && other.environment == given)

        try FileManager.default.removeItem(at: release.appendingPathComponent(".venv"))
        let noVenv = DirectLauncher.zygoteStart(command: ".gust/start", directory: release, releaseDirectory: "/app", environment: given)
        #expect(noVenv.executable == ".gust/start" && noVenv.arguments.isEmpty && noVenv.environment == given)
    }

    /// A slug with the buildpack's own `.gust/start` (taken from bin/compile) and a `.venv/bin/python`
    /// that writes its arguments and environment next to itself.
    static func release() throws -> URL {
        let compile = try String(
            contentsOf: GustBinaries.sourceRoot.appendingPathComponent("buildpacks/python/bin/compile"), encoding: .utf8
        )
        let opening = "cat > \"$build_dir/.gust/start\" <<'SH'\n"
        let start = try #require(compile.range(of: opening), "bin/compile writes .gust/start from a here-document")
        let end = try #require(compile.range(of: "\nSH\n", range: start.upperBound..<compile.endIndex))
        let script = String(compile[start.upperBound..<end.lowerBound]) + "\n"

        let release = FileManager.default.temporaryDirectory.appendingPathComponent("zygote-start-\(UUID().uuidString.prefix(8))")
        for (path, text) in [
            ".gust/start": script,
            ".venv/bin/python": "#!/bin/sh\nfor argument; do printf '%s\\n' \"$argument\"; done > \"$0.arguments\"\nenv > \"$0.environment\"\n",
        ] {
            let file = release.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path)
        }
        return release
    }

    /// What the stand-in Python was started with; the shell's own variables left out.
    static func recorded(in release: URL) throws -> (arguments: [String], environment: [String: String]) {
        let python = release.appendingPathComponent(".venv/bin/python").path
        let arguments = try String(contentsOfFile: python + ".arguments", encoding: .utf8).split(separator: "\n").map(String.init)
        var environment: [String: String] = [:]
        for line in try String(contentsOfFile: python + ".environment", encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            environment[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        for shell in ["PWD", "OLDPWD", "SHLVL", "_"] { environment[shell] = nil }
        return (arguments, environment)
    }
}
