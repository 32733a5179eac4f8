import Foundation
import GustCore
import Testing

@testable import GustBuild

/// Which directories gustd builds in and the hook sweeps: a push's workspace of that app only.
struct BuildWorkspaceTests {
    let home = GustHome(path: "/srv/gust")

    @Test func aWorkspaceIsTmpBuildAppAndEightHexDigits() throws {
        let cats = try AppName("cats")
        #expect(Build.isWorkspace(URL(fileURLWithPath: "/srv/gust/tmp/build-cats-0a1b2c3d"), of: cats, in: home))
        #expect(!Build.isWorkspace(URL(fileURLWithPath: "/srv/gust/tmp/build-cats-2-0a1b2c3d"), of: cats, in: home), "cats-2's is not cats'")
        #expect(Build.isWorkspace(URL(fileURLWithPath: "/srv/gust/tmp/build-cats-2-0a1b2c3d"), of: try AppName("cats-2"), in: home))
        #expect(!Build.isWorkspace(URL(fileURLWithPath: "/srv/gust/tmp/dev-cats-0a1b2c3d"), of: cats, in: home), "gust dev's")
        #expect(!Build.isWorkspace(URL(fileURLWithPath: "/srv/gust/repos/build-cats-0a1b2c3d"), of: cats, in: home))
        #expect(!Build.isWorkspace(URL(fileURLWithPath: "/srv/gust/tmp/../data/build-cats-0a1b2c3d"), of: cats, in: home))
        #expect(!Build.isWorkspace(URL(fileURLWithPath: "/srv/gust/tmp/build-cats-0a1b2c3dx"), of: cats, in: home))
    }

    @Test func theHookSweepsOnlyItsAppsWorkspaces() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gust-workspaces-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: root) }
        let home = GustHome(path: root.path)
        let names = ["build-cats-0a1b2c3d", "build-cats-2-0a1b2c3d", "dev-cats-0a1b2c3d", "build-dogs-0a1b2c3d"]
        for name in names { try FileManager.default.createDirectory(at: home.tmp.appendingPathComponent(name + "/app"), withIntermediateDirectories: true) }
        Build.removeStaleWorkspaces(of: try AppName("cats"), in: home)
        #expect(try FileManager.default.contentsOfDirectory(atPath: home.tmp.path).sorted() == names.dropFirst().sorted())
    }
}
