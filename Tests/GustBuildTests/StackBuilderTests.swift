import Foundation
import GustCore
import Synchronization
import Testing

@testable import GustBuild

/// StackBuilder's steps around mmdebstrap, on small trees (StackTests builds real stacks).
struct StackBuilderTests {
    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("stack-builder-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    func mode(_ path: String) -> Int {
        var info = stat()
        lstat(path, &info)
        return Int(info.st_mode & 0o7777)
    }

    @Test func aRootIsMadeReadOnlyLinksUntouchedAndRemovedAfter() throws {
        let root = try scratch()
        defer { try? StackBuilder.removeTree(root) }
        try FileManager.default.createDirectory(atPath: root.path + "/usr/bin", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root.path + "/usr/bin/tool", contents: Data("x".utf8), attributes: [.posixPermissions: 0o4755])
        _ = FileManager.default.createFile(atPath: root.path + "/usr/data", contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        _ = FileManager.default.createFile(atPath: root.path + "/outside", contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        try FileManager.default.createSymbolicLink(atPath: root.path + "/usr/link", withDestinationPath: root.path + "/outside")
        try FileManager.default.createDirectory(atPath: root.path + "/tmp", withIntermediateDirectories: true)
        chmod(root.path + "/tmp", 0o1777)
        try StackBuilder.makeReadOnly(root.appendingPathComponent("usr"))
        try StackBuilder.makeReadOnly(root.appendingPathComponent("tmp"))
        #expect(mode(root.path + "/usr/bin/tool") == 0o4555)
        #expect(mode(root.path + "/usr/data") == 0o444)
        #expect(mode(root.path + "/usr/bin") == 0o555 && mode(root.path + "/usr") == 0o555)
        #expect(mode(root.path + "/tmp") == 0o1555)
        #expect(mode(root.path + "/outside") == 0o644, "a link's target is not followed")
        try StackBuilder.removeTree(root)
        #expect(!FileManager.default.fileExists(atPath: root.path))
    }

    @Test func diskUsageCountsAHardLinkedFileOnceAndFollowsNoLink() throws {
        let root = try scratch()
        defer { try? StackBuilder.removeTree(root) }
        let big = Data(repeating: 7, count: 1 << 20)
        try big.write(to: root.appendingPathComponent("a"))
        let alone = DiskUsage.of(root)
        #expect(alone >= 1 << 20)
        link(root.path + "/a", root.path + "/b")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/usr", withDestinationPath: "/usr")
        #expect(DiskUsage.of(root) < alone + 65536)
    }

    @Test func theNextVersionFollowsTheHighestOfItsNameAndUnfinishedBuildsAreRemoved() throws {
        let home = GustHome(path: try scratch().path)
        defer { try? StackBuilder.removeTree(home.root) }
        for name in ["bookworm@1", "bookworm@3", "trixie@7", ".building-bookworm-4-abcd", "junk"] {
            try FileManager.default.createDirectory(at: home.stacks.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        #expect(try StackBuilder(home: home, name: "bookworm", suite: "bookworm").nextVersion(in: home.stacks) == 4)
        #expect(try StackBuilder(home: home, name: "trixie", suite: "trixie").nextVersion(in: home.stacks) == 8)
        #expect(try StackBuilder(home: home, name: "web", suite: "trixie").nextVersion(in: home.stacks) == 1)
        try StackBuilder.removeUnfinished(in: home.stacks)
        #expect(!FileManager.default.fileExists(atPath: home.stacks.appendingPathComponent(".building-bookworm-4-abcd").path))
        #expect(throws: GustError.self) { try StackBuilder(home: home, name: "x", suite: "sid") }
        #expect(throws: GustError.self) { try StackBuilder(home: home, name: "../etc", suite: "trixie") }
    }

    @Test func mountPointsAreReadWithTheirEscapesAndOnlyUnderThePath() {
        let mountinfo = """
            22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
            90 22 0:5 / /srv/gust/stacks/.building-a\\040b/rootfs/proc ro - proc proc ro
            91 22 0:6 / /srv/gust/stacks/.building-a\\040b/rootfs/dev/pts rw - devpts none rw
            92 22 0:7 / /srv/gust/stacks/.building-ab/rootfs/sys ro - sysfs sys ro
            93 22 0:8 / /srv/gust/stacks/.building-a ro - tmpfs tmpfs rw
            """
        #expect(StackBuilder.mountPoints(under: "/srv/gust/stacks/.building-a b", mountinfo: mountinfo) == [
            "/srv/gust/stacks/.building-a b/rootfs/proc", "/srv/gust/stacks/.building-a b/rootfs/dev/pts",
        ])
        #expect(StackBuilder.mountPoints(under: "/srv/gust/stacks/.building-a/", mountinfo: mountinfo) == ["/srv/gust/stacks/.building-a"])
        #expect(StackBuilder.mountPoints(under: "/srv/gust/stacks/.building-c", mountinfo: mountinfo).isEmpty)
    }

    /// A home reached through a link (`/srv/gust` pointing at `/data/gust`): the kernel names mount
    /// points and a process's root by their real paths, so the link is resolved before comparing.
    /// Without that, a mount inside went unseen and `removeTree` walked into it.
    @Test func aMountInsideATreeReachedThroughALinkIsSeen() throws {
        let base = try scratch()
        defer { try? StackBuilder.removeTree(base) }
        let real = base.appendingPathComponent("real")
        let mountPoint = real.appendingPathComponent("stacks/.building-bookworm-1-abcd/rootfs/proc")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        let linked = base.appendingPathComponent("linked")
        try FileManager.default.createSymbolicLink(at: linked, withDestinationURL: real)
        guard mount("tmpfs", mountPoint.path, "tmpfs", 0, "size=1m") == 0 else { return }  // not permitted here
        defer { umount2(mountPoint.path, Int32(MNT_DETACH)) }
        let kept = mountPoint.appendingPathComponent("kept")
        #expect(FileManager.default.createFile(atPath: kept.path, contents: Data("x".utf8)))

        let unfinished = linked.appendingPathComponent("stacks/.building-bookworm-1-abcd")
        #expect(StackBuilder.mountPoints(under: unfinished.path) == [mountPoint.path])
        #expect(throws: GustError.self) { try StackBuilder.removeTree(unfinished) }
        #expect(FileManager.default.fileExists(atPath: kept.path), "nothing removed through the mount")
        StackBuilder.unmountLeftovers(under: unfinished)
        #expect(StackBuilder.mountPoints(under: unfinished.path).isEmpty)
    }

    /// An unfinished build whose mmdebstrap outlived its `gust` still has file systems mounted in
    /// its root: neither `removeTree` nor the next build's sweep goes through them while a process
    /// names it. Once none does, the sweep takes them down and removes the rest. (A real mount:
    /// skipped where this process may not mount.)
    @Test func aTreeWithAFileSystemMountedInsideIsNeverRemovedThroughIt() throws {
        let home = GustHome(path: try scratch().path)
        defer { try? StackBuilder.removeTree(home.root) }
        let unfinished = home.stacks.appendingPathComponent(".building-bookworm-2-abcd")
        let other = home.stacks.appendingPathComponent(".building-bookworm-1-dcba")
        let mountPoint = unfinished.appendingPathComponent("rootfs/dev/shm")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        guard mount("tmpfs", mountPoint.path, "tmpfs", 0, "size=1m") == 0 else { return }  // not permitted here
        defer { umount2(mountPoint.path, Int32(MNT_DETACH)) }
        let kept = mountPoint.appendingPathComponent("kept")
        #expect(FileManager.default.createFile(atPath: kept.path, contents: Data("x".utf8)))

        #expect(throws: GustError.self) { try StackBuilder.removeTree(unfinished) }
        let said = Mutex<[String]>([])
        try StackBuilder.removeUnfinished(in: home.stacks, progress: { line in said.withLock { $0.append(line) } }, running: { $0 == unfinished.path ? [4242] : [] })
        #expect(FileManager.default.fileExists(atPath: kept.path), "nothing removed through the mount")
        #expect(!FileManager.default.fileExists(atPath: other.path), "the other unfinished build is removed")
        #expect(said.withLock { $0 }.contains { $0.contains(unfinished.path) && $0.contains("still run there (4242)") })

        try StackBuilder.removeUnfinished(in: home.stacks, running: { _ in [] })
        #expect(StackBuilder.mountPoints(under: unfinished.path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: unfinished.path))
    }

    /// What tells the sweep that an earlier build still runs: a process whose command line names
    /// the directory (as mmdebstrap's, its worker's and apt's do), and none once it has ended.
    @Test func aProcessNamingADirectoryIsFoundUntilItEnds() throws {
        let directory = try scratch().appendingPathComponent(".building-bookworm-3-abcd/rootfs")
        let named = Process()
        named.executableURL = URL(fileURLWithPath: "/bin/sh")
        // The shell waits in a builtin (no child, no exec: its command line stays as it is) until stopped.
        named.arguments = ["-c", "read line", "DPkg::Chroot-Directory=" + directory.path]
        named.standardInput = Pipe()
        try named.run()
        defer { if named.isRunning { kill(named.processIdentifier, SIGKILL) } }
        // Until the child has exec'd the shell, its command line is still this process's (bounded wait).
        let execed = Date().addingTimeInterval(10)
        while !((try? String(contentsOfFile: "/proc/\(named.processIdentifier)/cmdline", encoding: .utf8)) ?? "").contains("read line"),
              Date() < execed { usleep(5_000) }
        #expect(StackBuilder.processes(naming: directory.deletingLastPathComponent().path) == [named.processIdentifier])
        #expect(StackBuilder.processes(naming: directory.path + "-other").isEmpty)
        kill(named.processIdentifier, SIGKILL)
        named.waitUntilExit()
        #expect(StackBuilder.processes(naming: directory.deletingLastPathComponent().path).isEmpty)
    }

    /// apt's dpkg runs chrooted into the new root and names it nowhere in its command line: a
    /// process whose root, or working directory, is inside the directory is one of the build too.
    @Test func aProcessChrootedOrWorkingInsideADirectoryIsFound() throws {
        let directory = try scratch().appendingPathComponent(".building-bookworm-5-abcd/rootfs")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let staging = directory.deletingLastPathComponent().path
        func waiting(_ script: String, in cwd: URL) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            // The path comes in the environment, never on the command line.
            process.arguments = ["-c", script]
            process.environment = ["INTO": directory.path]
            process.currentDirectoryURL = cwd
            process.standardInput = Pipe()
            try process.run()
            return process
        }
        /// The processes found, once there are some (the child gets there on its own time; bounded).
        func found() -> [Int32] {
            let deadline = Date().addingTimeInterval(10)
            var pids = StackBuilder.processes(naming: staging)
            while pids.isEmpty, Date() < deadline {
                usleep(10_000)
                pids = StackBuilder.processes(naming: staging)
            }
            return pids
        }
        let working = try waiting("input()", in: directory)
        defer { kill(working.processIdentifier, SIGKILL) }
        #expect(found() == [working.processIdentifier])
        kill(working.processIdentifier, SIGKILL)
        working.waitUntilExit()
        #expect(StackBuilder.processes(naming: staging).isEmpty)

        guard getuid() == 0 else { return }  // chroot needs root, as building a stack does
        let chrooted = try waiting("import os; os.chroot(os.environ['INTO']); os.chdir('/'); input()", in: URL(fileURLWithPath: "/"))
        defer { kill(chrooted.processIdentifier, SIGKILL) }
        #expect(found() == [chrooted.processIdentifier])
        #expect(StackBuilder.processes(naming: staging + "-other").isEmpty)
    }

    /// A failed or stopped build's directory is taken away only once no process of the build names
    /// it: while one does (past the patience), nothing is unmounted or removed and the user is told;
    /// once none does, its mounts go and then the tree.
    @Test func aStoppedBuildsDirectoryGoesOnlyOnceNoProcessOfItRuns() throws {
        let staging = try scratch()
        defer { try? StackBuilder.removeTree(staging) }
        let mountPoint = staging.appendingPathComponent("rootfs/proc")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        guard mount("tmpfs", mountPoint.path, "tmpfs", 0, "size=1m") == 0 else { return }  // not permitted here
        defer { umount2(mountPoint.path, Int32(MNT_DETACH)) }
        let said = Mutex<[String]>([])
        StackBuilder.takeDown(staging, patience: .zero, progress: { line in said.withLock { $0.append(line) } }, running: { _ in [4242] })
        #expect(StackBuilder.mountPoints(under: staging.path) == [mountPoint.path], "nothing unmounted under a running process")
        #expect(said.withLock { $0 } == ["       Left \(staging.path): processes of a build still run there (4242); the next build removes it."])

        // The build's last process ends while it waits.
        let asked = Mutex(0)
        StackBuilder.takeDown(staging, progress: { line in said.withLock { $0.append(line) } }, running: { _ in
            asked.withLock { count in
                count += 1
                return count < 3 ? [4242] : []
            }
        })
        #expect(asked.withLock { $0 } == 3)
        #expect(StackBuilder.mountPoints(under: staging.path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: staging.path))
        #expect(said.withLock { $0 }.count == 1, "nothing more said: \(said.withLock { $0 })")
    }

    /// An mmdebstrap stopped while it set up its root's mounts can exit leaving some: a failed or
    /// interrupted build takes them down (nested ones first) before it removes its directory.
    @Test func whatAnExitedMmdebstrapLeftMountedIsTakenDown() throws {
        let staging = try scratch()
        defer { try? StackBuilder.removeTree(staging) }
        let outer = staging.appendingPathComponent("rootfs/dev")
        try FileManager.default.createDirectory(at: outer, withIntermediateDirectories: true)
        guard mount("tmpfs", outer.path, "tmpfs", 0, "size=1m") == 0 else { return }  // not permitted here
        let inner = outer.appendingPathComponent("shm")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        #expect(mount("tmpfs", inner.path, "tmpfs", 0, "size=1m") == 0)
        #expect(StackBuilder.mountPoints(under: staging.path).count == 2)
        StackBuilder.unmountLeftovers(under: staging)
        #expect(StackBuilder.mountPoints(under: staging.path).isEmpty)
        try StackBuilder.removeTree(staging)
        #expect(!FileManager.default.fileExists(atPath: staging.path))
    }
}
