import Foundation
import GustCore
import Testing

@testable import GustCLI

/// The pieces of `gust dev` and `gust call` that read user input: `.env`, a
/// directory's app name, what changed in a tree, a call's arguments.
@Suite struct DevParsingTests {
    @Test func dotEnvReadsAsDotenvDoes() {
        let env = DotEnv(text: """
            # a comment
            GREETING=hello world
            export QUOTED="a \\"b\\"\\nc"
            SINGLE='$NOT expanded \\n'
            INLINE=value # comment
            EMPTY=
            1BAD=x
            no equals sign
            """)
        #expect(env.values["GREETING"] == "hello world")
        #expect(env.values["QUOTED"] == "a \"b\"\nc")
        #expect(env.values["SINGLE"] == "$NOT expanded \\n")
        #expect(env.values["INLINE"] == "value")
        #expect(env.values["EMPTY"] == "")
        #expect(env.values["1BAD"] == nil)
        #expect(env.skipped == [7, 8])
    }

    @Test func aDirectoryNameBecomesAnAppName() {
        let name = { DevWorkspace.appName(for: URL(fileURLWithPath: $0)).rawValue }
        #expect(name("/home/me/My Cats") == "my-cats")
        #expect(name("/tmp/42-things!") == "things")
        #expect(name("/tmp/---") == "app")
        #expect(name("/tmp/\u{1b}[31m;rm -rf") == "m-rm-rf")
        #expect(name("/tmp/" + String(repeating: "a", count: 300)).count == 40)
    }

    /// A change is taken once two scans a pause apart agree: a file saved in place (truncated,
    /// then written) is seen written, not empty; a tree that never holds still is taken after the bound.
    @Test func aChangeIsTakenOnceTheTreeHoldsStill() async throws {
        func tree(_ size: Int) -> DevTree {
            var tree = DevTree()
            tree.files["food.py"] = DevTree.Stamp(modified: timespec(tv_sec: size, tv_nsec: 0), size: size, mode: 0o100644)
            return tree
        }
        var scans = [tree(40), tree(40), tree(99)]
        var pauses: [Duration] = []
        let settled = try await DevTree.settled(tree(0), pause: .milliseconds(50), scan: { scans.removeFirst() }, sleep: { pauses.append($0) })
        #expect(settled == tree(40))
        #expect(pauses == Array(repeating: .milliseconds(50), count: 2), "the written file, then the same again")
        #expect(scans == [tree(99)])

        var size = 0
        let restless = try await DevTree.settled(tree(0), pause: .milliseconds(50), rounds: 5, scan: {
            size += 1
            return tree(size)
        }, sleep: { _ in })
        #expect(restless == tree(5))
    }

    @Test func aTreeSaysWhatChanged() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gust-tree-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("node_modules/x"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("pkg/__pycache__"), withIntermediateDirectories: true)
        try "a".write(to: root.appendingPathComponent("main.py"), atomically: true, encoding: .utf8)
        try "b".write(to: root.appendingPathComponent("pkg/mod.py"), atomically: true, encoding: .utf8)
        try "c".write(to: root.appendingPathComponent("pkg/__pycache__/mod.pyc"), atomically: true, encoding: .utf8)
        try "d".write(to: root.appendingPathComponent("node_modules/x/index.js"), atomically: true, encoding: .utf8)
        let before = try DevTree.scan(root)
        #expect(Set(before.files.keys) == ["main.py", "pkg/mod.py"])
        try "bb".write(to: root.appendingPathComponent("pkg/mod.py"), atomically: true, encoding: .utf8)
        try "e".write(to: root.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: root.appendingPathComponent("main.py"))
        let after = try DevTree.scan(root)
        #expect(after.changes(since: before) == [".env", "main.py", "pkg/mod.py"])
        let copy = root.appendingPathComponent("copy")
        try after.copy(from: root, to: copy)
        #expect(try String(contentsOf: copy.appendingPathComponent("pkg/mod.py"), encoding: .utf8) == "bb")
        #expect(!FileManager.default.fileExists(atPath: copy.appendingPathComponent(".env").path), "config is not code")
    }

    @Test func callArgumentsAreJSON() throws {
        #expect(try CallCommand.arguments(nil) == Data("{}".utf8))
        #expect(try CallCommand.arguments(#"{"a": [1, 2]}"#) == Data(#"{"a": [1, 2]}"#.utf8))
        #expect(throws: (any Error).self) { try CallCommand.arguments("{a") }
        #expect(try CallCommand.arguments("\"a string\"") == Data("\"a string\"".utf8))
    }
}
