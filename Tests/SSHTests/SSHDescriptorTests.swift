import Foundation
import GustCore
import GustTesting
import Testing

/// git started by `gust ssh-command` holds nothing of gust's: no store, no
/// log, no socket besides the connection sshd gave it (issue 10, item 1).
@Suite(.serialized, .timeLimit(.minutes(20)))
struct SSHDescriptorTests {
    @Test(.scratchDirectory) func gitStartedByGustHoldsOnlyItsOwnDescriptors() throws {
        let fixture = try SSHFixture()
        let gustd = try GustdProcess(home: fixture.home)
        defer { gustd.stop() }
        let alice = try fixture.keyPair("alice")
        try fixture.addKey("alice", alice, ["--admin"])
        #expect(try fixture.gust(["apps", "create", "cats"]).status == 0)
        // git-receive-pack runs the update hook as its child: the hook lists its parent's descriptors.
        let record = fixture.root.appendingPathComponent("git-fds.txt")
        let hook = fixture.home.repository(try AppName("cats")).appendingPathComponent("hooks/update")
        try "#!/bin/sh\nls -l /proc/$PPID/fd > '\(record.path)'\n".write(to: hook, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook.path)

        let push = try fixture.push(try fixture.workspace("cats"), app: "cats", as: alice)
        #expect(push.status == 0, "\(push.output)")
        let listing = try String(contentsOf: record, encoding: .utf8)
        let git = listing.split(separator: "\n").compactMap { line -> (Int, String)? in
            guard let arrow = line.range(of: " -> "), let fd = line[..<arrow.lowerBound].split(separator: " ").last.flatMap({ Int($0) }) else { return nil }
            return (fd, String(line[arrow.upperBound...]))
        }
        #expect(git.count >= 3, "\(listing)")
        let inherited = git.filter { $0.0 > 2 && ($0.1.hasPrefix("socket:") || $0.1.contains("gust.sqlite") || $0.1.contains("/logs/")) }
        #expect(inherited.isEmpty, "git-receive-pack holds gust's \(inherited):\n\(listing)")
    }
}
