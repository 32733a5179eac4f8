import Foundation
import GustCore
import GustTesting
import Testing

/// GUST_HOME holds the store, keys, secrets, logs and every app's code: gustd's user's alone.
@Suite(.timeLimit(.minutes(20)))
struct HomePermissionTests {
    @Test(.scratchDirectory) func nothingInTheHomeIsReadableByOtherUsers() throws {
        let fixture = try PushFixture()
        let work = try fixture.workspace("py")
        try work.write("__init__.py", """
            import gust

            @gust.op('hello')
            def hello():
                return gust.records.save('cat', {'name': 'tom'})
            """)
        try work.commit("One")
        let push = try work.push(to: fixture.remote)
        #expect(push.status == 0, "\(push.output)")
        let token = try GustBinaries.gust(fixture.home, ["tokens", "create", "cats"])
        #expect(token.status == 0, "\(token.output)")
        let keys = try GustBinaries.gust(fixture.home, ["config", "set", "cats", "API_KEY=long-enough-secret", "--secret"])
        #expect(keys.status == 0, "\(keys.output)")
        #expect(try fixture.call("POST", "/_/functions/hello").status == 200)

        let root = fixture.home.root
        // The home and every directory at its top are 0700: nothing below is reachable by another user.
        var open: [String] = []
        for entry in [""] + ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []) {
            let mode = try Self.mode(root.appendingPathComponent(entry).path)
            if Self.isDirectory(mode) && mode & 0o077 != 0 { open.append("\(entry.isEmpty ? "." : entry) \(String(mode & 0o777, radix: 8))") }
        }
        // And the stores, keys, tokens, logs and artifacts are private themselves, should the home be opened.
        var checked = 0
        for top in ["", "data", "logs", "artifacts", "ssh", "run"] {
            let directory = root.appendingPathComponent(top)
            let walker = FileManager.default.enumerator(atPath: directory.path)
            while let relative = walker?.nextObject() as? String {
                if top.isEmpty && relative.contains("/") { continue }
                // The sandboxes' /etc: copies of host entries every user reads (SandboxEtc), which the
                // apps' uids read through their bind mount; `run/` itself stays 0700 (checked above).
                if top == "run" && (relative == "sandbox-etc" || relative.hasPrefix("sandbox-etc/")) { continue }
                let path = directory.appendingPathComponent(relative).path
                let mode = try Self.mode(path)
                guard !Self.isLink(mode) else { continue }
                checked += 1
                if mode & 0o077 != 0 { open.append("\(top)/\(relative) \(String(mode & 0o777, radix: 8))") }
            }
        }
        #expect(checked > 8)
        #expect(open.isEmpty, "readable or writable by others: \(open.prefix(20).joined(separator: ", "))")
        for file in ["gust.sqlite", "data/cats/records.sqlite", "logs"] {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent(file).path), "\(file) exists")
        }
    }

    static func mode(_ path: String) throws -> mode_t {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        return info.st_mode
    }

    static func isDirectory(_ mode: mode_t) -> Bool { mode & S_IFMT == S_IFDIR }
    static func isLink(_ mode: mode_t) -> Bool { mode & S_IFMT == S_IFLNK }
}
