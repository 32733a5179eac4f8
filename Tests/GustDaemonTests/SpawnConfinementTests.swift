import Foundation
@testable import GustDaemon
import Testing

/// `gust_spawn` joins the child to its cgroups before exec, and a failure to join is the spawn's
/// error, the program never run. A regular file stands in for `cgroup.procs` here.
@Suite struct SpawnConfinementTests {
    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func theChildWritesItselfIntoEachCgroupBeforeItsProgramRuns() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let procs = [directory.appendingPathComponent("memory.procs").path, directory.appendingPathComponent("pids.procs").path]
        procs.forEach { _ = FileManager.default.createFile(atPath: $0, contents: nil) }
        // The program reads the files: they already hold the child's "0" (the kernel reads it as "me").
        let process = try InstanceProcess(
            executable: "/bin/sh", arguments: ["-c", "cat \(procs[0]) \(procs[1]) > \(directory.path)/seen"], environment: [:],
            directory: directory.path, confinement: SpawnConfinement(cgroupProcs: procs),
            onOutput: { _, _ in }, onExit: { _ in }
        )
        #expect(await process.exitStatus() == 0)
        #expect(try String(contentsOfFile: directory.path + "/seen", encoding: .utf8) == "00")
    }

    @Test func aCgroupThatCannotBeJoinedFailsTheSpawnAndNothingRuns() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = #expect(throws: SpawnError.self) {
            try InstanceProcess(
                executable: "/bin/sh", arguments: ["-c", "touch \(directory.path)/ran"], environment: [:],
                directory: directory.path, confinement: SpawnConfinement(cgroupProcs: [directory.path + "/gone/cgroup.procs"]),
                onOutput: { _, _ in }, onExit: { _ in }
            )
        }
        #expect(error?.description.contains("joining its cgroup failed (No such file or directory); it did not run") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/ran"))
    }

    @Test func anAddressSpaceRlimitReachesTheChild() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = try InstanceProcess(
            executable: "/bin/sh", arguments: ["-c", "ulimit -v > \(directory.path)/limit"], environment: [:],
            directory: directory.path, confinement: SpawnConfinement(addressSpaceLimit: 512 << 20),
            onOutput: { _, _ in }, onExit: { _ in }
        )
        #expect(await process.exitStatus() == 0)
        #expect(try String(contentsOfFile: directory.path + "/limit", encoding: .utf8) == "524288\n")
    }
}
