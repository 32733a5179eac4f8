import Foundation
import GustCore
import GustTesting

/// A scratch GUST_HOME with one app created by the real `gust apps create`,
/// a real gustd serving it, and working copies to push to it with the real git.
final class PushFixture: Sendable {
    let root: URL
    let home: GustHome
    let app: String
    let gustd: GustdProcess?

    init(app: String = "cats", root: URL = ScratchDirectory.current, startGustd: Bool = true, gustdArguments: [String] = []) throws {
        self.root = root
        self.app = app
        home = GustHome(path: root.appendingPathComponent("home").path)
        let created = try GustBinaries.gust(home, ["apps", "create", app])
        guard created.status == 0 else { throw GitFailure(arguments: ["gust apps create", app], result: created) }
        gustd = startGustd ? try GustdProcess(home: home, arguments: gustdArguments) : nil
    }

    /// The port gustd serves HTTP on.
    var port: Int { gustd?.port ?? 0 }

    /// Calls the app by path prefix (`/apps/APP/...`).
    func call(_ method: String = "GET", _ path: String, body: String? = nil, headers: [String: String] = [:]) throws -> HTTPResult {
        try HTTPClient.request(port: port, method, "/apps/\(app)\(path)", headers: headers, body: body)
    }

    /// Calls the app by host (`APP.localhost:PORT`).
    func callByHost(_ method: String = "GET", _ path: String, body: String? = nil) throws -> HTTPResult {
        try HTTPClient.request(port: port, method, path, host: "\(app).localhost:\(port)", body: body)
    }

    var remote: String { home.repository(try! AppName(app)).path }

    /// A working copy named `name`, filled from `examples/EXAMPLE` or a fixture dir.
    func workspace(_ name: String, copying template: URL? = nil) throws -> GitWorkspace {
        try GitWorkspace(at: root.appendingPathComponent("work-\(name)"), copying: template)
    }

    /// Creates the app `app` and pushes a Node app whose `index.js` is `source` to it; the push's outcome.
    @discardableResult
    func pushNode(_ source: String, to app: String) throws -> CommandResult {
        let created = try GustBinaries.gust(home, ["apps", "create", app])
        guard created.status == 0 else { throw GitFailure(arguments: ["gust apps create", app], result: created) }
        let work = try workspace("node-\(app)")
        try work.write("package.json", #"{"name": "\#(app)", "main": "index.js"}"#)
        try work.write("index.js", source)
        try work.commit("App")
        return try work.push(to: home.repository(try AppName(app)).path)
    }

    /// Pushes a Python app whose `__init__.py` is `source` to the fixture's app; the push's outcome.
    @discardableResult
    func pushPython(_ source: String, message: String = "App") throws -> CommandResult {
        let work = try workspace("py-\(UUID().uuidString.prefix(6))")
        try work.write("__init__.py", source)
        try work.commit(message)
        return try work.push(to: remote)
    }

    static func example(_ name: String) -> URL {
        GustBinaries.sourceRoot.appendingPathComponent("examples/\(name)")
    }

    func releases() throws -> [[String: Any]] {
        let result = try GustBinaries.gust(home, ["releases", app, "--json"])
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    func store() throws -> Store { try Store(home: home) }
}
