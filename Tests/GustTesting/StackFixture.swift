public import Foundation
public import GustCore

/// A stack for tests, in exactly the layout `StackCatalog` reads
/// (`GUST_HOME/stacks/NAME@VERSION/{rootfs/, stack.json}`, stack.json last), and a release marked
/// as built on it.
///
/// INTERIM: until `gust stacks build` lands (issue 14, item 1, the stacks branch), this is the one
/// place tests make a stack: `mmdebstrap --variant=minbase` of Debian bookworm with Python, venv,
/// Node and CA certificates, built once per machine into a cache (about 320 MB and a minute and a
/// half) and hard-linked into each test's home. A pushed release is then marked as built on it
/// with `markRelease`: this host is Debian bookworm, so a venv built here against /usr/bin/python3
/// (push with `hostPythonPath`) runs on a bookworm root. When the stacks branch is merged, the lead
/// replaces `install` with `gust stacks build` and `markRelease` with a push onto the stack; the
/// OCI tests call nothing else of this type.
public enum StackFixture {
    /// Where the one bookworm root is kept between test runs.
    public static let cache = URL(fileURLWithPath: "/var/tmp/gust-test-stacks/bookworm-minbase")
    /// A PATH whose python3 is Debian's (/usr/bin/python3), for a push whose venv must run on the stack.
    public static let hostPythonPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// The stack's creation time: fixed, so its layer's digest is the same in every test run.
    public static let createdAt = Date(timeIntervalSince1970: 1_764_547_200)  // 2025-12-01

    /// Puts the bookworm stack into `home` as `bookworm@VERSION` and returns it.
    @discardableResult
    public static func install(into home: GustHome, version: Int = 1) throws -> Stack {
        let cached = try cachedRootfs()
        let reference = try Stack.Reference(name: "bookworm", version: version)
        let directory = home.stack(reference)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let copy = try Command.run("cp", ["-al", cached.path, Stack.rootfs(of: reference, in: home).path], timeout: 300)
        guard copy.status == 0 else { throw FixtureFailure("cp -al of the cached stack failed: \(copy.output)") }
        let stack = Stack(reference: reference, suite: "bookworm", createdAt: createdAt, python: "3.11.2", node: "18.19.0", sizeBytes: nil)
        try StackCatalog.encode(stack).write(to: Stack.descriptionFile(of: reference, in: home))
        return stack
    }

    /// Records that `version` of `app` was built on `stack` (what a push onto a stack will record itself).
    public static func markRelease(_ app: AppName, version: Int, stack: Stack.Reference, in home: GustHome) throws {
        let store = try Store(home: home)
        try store.db.query("UPDATE releases SET stack = ? WHERE app = ? AND version = ?",
                           [.text(stack.description), .text(app.rawValue), .integer(Int64(version))])
        guard try store.requireRelease(app, version: version).stack == stack.description else {
            throw FixtureFailure("v\(version) of \(app) was not marked as built on \(stack)")
        }
    }

    /// The cached root, built with mmdebstrap the first time (into a temporary name, renamed when whole).
    static func cachedRootfs() throws -> URL {
        let rootfs = cache.appendingPathComponent("rootfs")
        if FileManager.default.fileExists(atPath: rootfs.appendingPathComponent("usr/bin/python3").path) { return rootfs }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let building = cache.appendingPathComponent("rootfs.building-\(getpid())")
        try? FileManager.default.removeItem(at: building)
        let result = try Command.run(
            "mmdebstrap", ["--variant=minbase", "--include=python3,python3-venv,nodejs,ca-certificates", "bookworm", building.path],
            timeout: 900
        )
        guard result.status == 0 else {
            try? FileManager.default.removeItem(at: building)
            throw FixtureFailure("mmdebstrap failed (\(result.status)): \(result.output.suffix(2000))")
        }
        if rename(building.path, rootfs.path) != 0 { try? FileManager.default.removeItem(at: building) }
        return rootfs
    }
}

public struct FixtureFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
