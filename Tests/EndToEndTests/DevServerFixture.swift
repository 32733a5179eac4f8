import Foundation
import GustCore
import GustTesting

/// A real `gust dev` over a directory of the scratch directory, with its
/// cache (XDG_CACHE_HOME) there too; stopped by PID, and the gustd it started
/// by the PID it wrote, whatever happened.
final class DevServerFixture: @unchecked Sendable {
    let directory: URL
    let cache: URL
    let command: BackgroundCommand
    private(set) var port = 0

    init(_ directory: URL, root: URL = ScratchDirectory.current, arguments: [String] = []) throws {
        self.directory = directory
        cache = root.appendingPathComponent("cache")
        command = try BackgroundCommand(
            GustBinaries.gust, ["dev", directory.path, "--port", "0"] + arguments, outputIn: root,
            environment: ["XDG_CACHE_HOME": cache.path]
        )
        guard command.waitForOutput(upTo: 120, { $0.contains("Edit and save: the functions reload.") }),
            let port = Self.port(in: command.output)
        else {
            stop()
            throw DevServerDidNotStart(output: command.output)
        }
        self.port = port
    }

    deinit { stop() }

    var output: String { command.output }
    var environment: [String: String] { ["XDG_CACHE_HOME": cache.path] }

    /// The dev home gust dev made for the directory: the only one in the cache.
    var home: GustHome {
        let dev = cache.appendingPathComponent("gust/dev")
        let name = (try? FileManager.default.contentsOfDirectory(atPath: dev.path))?.first ?? "none"
        return GustHome(path: dev.appendingPathComponent(name).path)
    }

    /// The token gust dev printed for the record store.
    var recordsToken: String? {
        output.split(separator: "\n").first { $0.contains("X-Auth-Token: ") }
            .map { String($0[$0.range(of: "X-Auth-Token: ")!.upperBound...]).trimmingCharacters(in: .whitespaces) }
    }

    func call(_ method: String = "GET", _ path: String, body: String? = nil, headers: [String: String] = [:]) throws -> HTTPResult {
        try HTTPClient.request(port: port, method, path, headers: headers, body: body)
    }

    /// `gust ARGS…` with this fixture's cache, in `directory`'s parent (so --dir or a DIR argument is needed).
    func gust(_ arguments: [String], input: String? = nil) throws -> CommandResult {
        try Command.run(GustBinaries.gust, arguments, environment: environment, input: input, timeout: 120)
    }

    /// Polls `condition` every 100 ms for up to `seconds`.
    func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<Int(seconds * 10) {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    /// gust dev by its PID (it stops its gustd), then that gustd by its PID should it still run.
    func stop() {
        let pidFile = home.root.appendingPathComponent("gustd.pid")
        command.stop()
        if let text = try? String(contentsOf: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let commandLine = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), commandLine.contains("gustd")
        {
            kill(pid, SIGKILL)
        }
    }

    static func port(in output: String) -> Int? {
        guard let range = output.range(of: "-----> Serving http://127.0.0.1:") else { return nil }
        return Int(output[range.upperBound...].prefix { $0.isNumber })
    }

    /// A copy of examples/NAME in the scratch directory.
    static func example(_ name: String, root: URL = ScratchDirectory.current) throws -> URL {
        let copy = root.appendingPathComponent("dev-\(name)")
        try FileManager.default.copyItem(at: GustBinaries.sourceRoot.appendingPathComponent("examples/\(name)"), to: copy)
        return copy
    }
}

struct DevServerDidNotStart: Error, CustomStringConvertible {
    var output: String
    var description: String { "gust dev did not start:\n\(output)" }
}
