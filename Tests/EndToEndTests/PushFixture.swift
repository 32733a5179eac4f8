import Foundation
import GustCore
import GustTesting

/// A scratch GUST_HOME with one app created by the real `gust apps create`,
/// and working copies to push to it with the real git.
struct PushFixture {
    let root: URL
    let home: GustHome
    let app: String

    init(app: String = "cats", root: URL = ScratchDirectory.current) throws {
        self.root = root
        self.app = app
        home = GustHome(path: root.appendingPathComponent("home").path)
        let created = try GustBinaries.gust(home, ["apps", "create", app])
        guard created.status == 0 else { throw GitFailure(arguments: ["gust apps create", app], result: created) }
    }

    var remote: String { home.repository(try! AppName(app)).path }

    /// A working copy named `name`, filled from `examples/EXAMPLE` or a fixture dir.
    func workspace(_ name: String, copying template: URL? = nil) throws -> GitWorkspace {
        try GitWorkspace(at: root.appendingPathComponent("work-\(name)"), copying: template)
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
