import Foundation
import GustTesting
import Testing

@testable import GustBuild

/// The sandboxes' `/etc`, copied once from a made-up host `/etc`: only the entries asked for,
/// links as the per-entry binds showed them, private contents left behind, remade each time.
struct SandboxEtcTests {
    @Test(.scratchDirectory) func onlyTheEntriesAskedForAreCopiedWithLinksIntoUsrKeptAndOthersFollowed() throws {
        let scratch = ScratchDirectory.current
        let host = scratch.appendingPathComponent("etc").path, run = scratch.appendingPathComponent("run")
        let fm = FileManager.default
        for directory in ["ssl/certs", "ssl/private", "ssh", "elsewhere"] {
            try fm.createDirectory(atPath: host + "/" + directory, withIntermediateDirectories: true)
        }
        try fm.createDirectory(at: run, withIntermediateDirectories: true)
        try "nameserver 10.0.0.1\n".write(toFile: host + "/elsewhere/stub-resolv.conf", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: host + "/resolv.conf", withDestinationPath: host + "/elsewhere/stub-resolv.conf")
        try fm.createSymbolicLink(atPath: host + "/localtime", withDestinationPath: "/usr/share/zoneinfo/Etc/UTC")
        try fm.createSymbolicLink(atPath: host + "/gone", withDestinationPath: host + "/nothing-here")
        try "root:x:0:0::/root:/bin/sh\n".write(toFile: host + "/passwd", atomically: true, encoding: .utf8)
        try "root:$6$secret\n".write(toFile: host + "/shadow", atomically: true, encoding: .utf8)
        try "CERT\n".write(toFile: host + "/ssl/certs/ca.pem", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: host + "/ssl/certs/abcd.0", withDestinationPath: "ca.pem")
        try "KEY\n".write(toFile: host + "/ssl/private/server.key", atomically: true, encoding: .utf8)
        chmod(host + "/ssl/private", 0o700)
        try "key\n".write(toFile: host + "/ssh/ssh_host_key", atomically: true, encoding: .utf8)

        let entries = ["resolv.conf", "localtime", "gone", "passwd", "ssl", "missing"]
        let made = try SandboxEtc.prepare(in: run, entries: entries, from: host)
        #expect(made == run.appendingPathComponent("sandbox-etc").path)
        #expect(Set(try fm.contentsOfDirectory(atPath: made)) == ["resolv.conf", "localtime", "passwd", "ssl"], "no shadow, ssh, dangling or missing entry")
        // A link out of what the sandbox has is its target's copy; one into /usr stays a link.
        #expect(try String(contentsOfFile: made + "/resolv.conf", encoding: .utf8) == "nameserver 10.0.0.1\n")
        #expect((try? fm.destinationOfSymbolicLink(atPath: made + "/resolv.conf")) == nil)
        #expect(try fm.destinationOfSymbolicLink(atPath: made + "/localtime") == "/usr/share/zoneinfo/Etc/UTC")
        // Below an entry, links are kept as they are; a directory others may not read is there, empty.
        #expect(try fm.destinationOfSymbolicLink(atPath: made + "/ssl/certs/abcd.0") == "ca.pem")
        #expect(try String(contentsOfFile: made + "/ssl/certs/ca.pem", encoding: .utf8) == "CERT\n")
        #expect(try fm.contentsOfDirectory(atPath: made + "/ssl/private").isEmpty)
        #expect((try fm.attributesOfItem(atPath: made + "/ssl/private")[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        #expect((try fm.attributesOfItem(atPath: made)[.posixPermissions] as? NSNumber)?.intValue == 0o755)

        // The next gustd makes it afresh: a change on the host shows, an entry gone is gone.
        try "nameserver 10.0.0.2\n".write(toFile: host + "/elsewhere/stub-resolv.conf", atomically: true, encoding: .utf8)
        try fm.removeItem(atPath: host + "/passwd")
        chmod(made + "/ssl", 0o555)  // read-only copies of the host's modes do not stop it
        let again = try SandboxEtc.prepare(in: run, entries: entries, from: host)
        #expect(try String(contentsOfFile: again + "/resolv.conf", encoding: .utf8) == "nameserver 10.0.0.2\n")
        #expect(!fm.fileExists(atPath: again + "/passwd"))
        #expect(Set(try fm.contentsOfDirectory(at: run, includingPropertiesForKeys: nil).map(\.lastPathComponent)) == ["sandbox-etc"])
    }

    /// A gustd taking over copies before it holds the home's lock, into a directory of its own:
    /// the copy a running gustd's sandboxes use is untouched until `prepare` swaps the staged one
    /// in (not copying again), and staged copies of processes that have gone are removed then.
    @Test(.scratchDirectory) func aCopyStagedBeforeTheLockIsSwappedInUnderItAndTheRunningOneIsUntouchedTillThen() throws {
        let scratch = ScratchDirectory.current
        let host = scratch.appendingPathComponent("etc").path, run = scratch.appendingPathComponent("run")
        let fm = FileManager.default
        try fm.createDirectory(atPath: host, withIntermediateDirectories: true)
        try fm.createDirectory(at: run, withIntermediateDirectories: true)
        try "one\n".write(toFile: host + "/hostname", atomically: true, encoding: .utf8)
        let running = try SandboxEtc.prepare(in: run, entries: ["hostname"], from: host)

        try "two\n".write(toFile: host + "/hostname", atomically: true, encoding: .utf8)
        try SandboxEtc.stage(in: run, entries: ["hostname"], from: host)
        #expect(try String(contentsOfFile: running + "/hostname", encoding: .utf8) == "one\n", "the running gustd's copy, untouched")
        let staged = SandboxEtc.stagingPath(in: run, pid: getpid())
        #expect(try String(contentsOfFile: staged + "/hostname", encoding: .utf8) == "two\n")

        // Left by a gustd that has gone (no process has pid 2^22 + 1: above pid_max's ceiling), and by one still running (ours' parent).
        let abandoned = SandboxEtc.stagingPath(in: run, pid: (1 << 22) + 1), waiting = SandboxEtc.stagingPath(in: run, pid: getppid())
        for directory in [abandoned, waiting] { try fm.createDirectory(atPath: directory, withIntermediateDirectories: false) }
        try "three\n".write(toFile: host + "/hostname", atomically: true, encoding: .utf8)
        let swapped = try SandboxEtc.prepare(in: run, entries: ["hostname"], from: host)
        #expect(swapped == running)
        #expect(try String(contentsOfFile: swapped + "/hostname", encoding: .utf8) == "two\n", "the staged copy, not a new one")
        #expect(!fm.fileExists(atPath: staged) && !fm.fileExists(atPath: abandoned))
        #expect(fm.fileExists(atPath: waiting), "another gustd's staged copy, still waiting for the lock")
    }

    @Test func aSandboxWithItsEtcBindsItWithOneMount() throws {
        var sandbox = Sandbox(identity: SandboxIdentity(range: nil, uid: 999, gid: 999))
        let perEntry = sandbox.command(app: nil, mounts: [], directory: "/", purpose: .instance, executable: "/usr/bin/true", arguments: [])
        #expect(perEntry.contains("--ro-bind-try"), "without a prepared /etc, each entry is bound on its own")
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-etc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: run) }
        sandbox = try sandbox.withHostEtc(in: run)
        let argv = sandbox.command(app: nil, mounts: [], directory: "/", purpose: .instance, executable: "/usr/bin/true", arguments: [])
        #expect(!argv.contains("--ro-bind-try"))
        #expect(argv.filter { $0.hasPrefix("/etc") } == ["/etc"], "\(argv)")
        let etc = argv.firstIndex(of: "/etc")!
        #expect(Array(argv[(etc - 2)...etc]) == ["--ro-bind", run.appendingPathComponent("sandbox-etc").path, "/etc"])
    }
}
