import Foundation
import GustCore
import GustTesting
import Testing

/// A stack reference names a directory under GUST_HOME and comes from a release row, a command line
/// or a pushed repository's pin: only NAME@VERSION passes. The catalogue lists finished stacks only
/// (a directory without its `stack.json` is a build that never ended), and releases keep their stack.
@Suite struct StackCatalogTests {
    @Test func onlyNameAtVersionIsAReference() throws {
        let reference = try Stack.Reference(parsing: "bookworm@12")
        #expect(reference.name == "bookworm" && reference.version == 12 && reference.description == "bookworm@12")
        for hostile in ["", "bookworm", "@1", "bookworm@", "bookworm@0", "bookworm@-1", "bookworm@01", "bookworm@1@2", "../x@1", "Bookworm@1",
                        "a/b@1", "1abc@1", "bookworm@1 ", String(repeating: "a", count: 33) + "@1", "bookworm@+1"] {
            #expect(throws: GustError.self, "\(hostile.debugDescription)") { try Stack.Reference(parsing: hostile) }
        }
    }

    @Test(.scratchDirectory) func theCatalogueListsFinishedStacksAndReleasesKeepTheirs() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        try home.prepare()
        let catalogue = StackCatalog(home: home)
        #expect(try catalogue.list().isEmpty)
        for (name, version, finished) in [("bookworm", 1, true), ("bookworm", 2, true), ("trixie", 1, true), ("trixie", 2, false)] {
            let reference = try Stack.Reference(name: name, version: version)
            try FileManager.default.createDirectory(at: Stack.rootfs(of: reference, in: home), withIntermediateDirectories: true)
            guard finished else { continue }
            let stack = Stack(reference: reference, suite: name, createdAt: Date(timeIntervalSince1970: 1_700_000_000), python: "3.11.2", node: nil, sizeBytes: 1)
            try StackCatalog.encode(stack).write(to: Stack.descriptionFile(of: reference, in: home))
        }
        #expect(try catalogue.list().map(\.reference.description) == ["bookworm@1", "bookworm@2", "trixie@1"])
        #expect(try catalogue.newest().map(\.reference.description) == ["bookworm@2", "trixie@1"])
        #expect(try catalogue.stack(try Stack.Reference(parsing: "trixie@2")) == nil)
        #expect(try catalogue.stack(try Stack.Reference(parsing: "bookworm@1"))?.python == "3.11.2")

        let store = try Store(home: home)
        let app = try AppName("cats")
        _ = try store.createApp(app)
        let built = try store.recordRelease(app, NewRelease(status: .built, description: "Deploy", stack: "bookworm@2"))
        #expect(built.stack == "bookworm@2")
        #expect(try store.recordReuse(of: built, description: "Set X", config: ["X": "1"], secretNames: []).stack == "bookworm@2")
        #expect(try store.recordRelease(app, NewRelease(status: .built, description: "Deploy")).stack == nil)
    }
}
