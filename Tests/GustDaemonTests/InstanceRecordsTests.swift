import Foundation
import GustCore
import GustTesting
import NIOCore
import Testing

@testable import GustDaemon

/// The records of running instances (`run/instances/ID.json`), written on every start without
/// an fsync, and manifests decoded where they arrive when small: files and bytes, no processes.
struct InstanceRecordsTests {
    @Test(.scratchDirectory) func aRecordIsWrittenWholeForTheOwnerOnlyAndForgottenWithItsSocket() throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        let records = InstanceRecords(home: home)
        try records.prepare()
        let entry = InstanceRecords.Entry(id: "abcd1234", pid: 4242, startTime: 99, app: "cats", version: 3, kind: "zygote")
        try records.remember(entry)
        try records.remember(entry)  // again: the same file, replaced

        let file = records.directory.appendingPathComponent("abcd1234.json")
        let read = try JSONDecoder().decode(InstanceRecords.Entry.self, from: Data(contentsOf: file))
        #expect((read.id, read.pid, read.startTime, read.app, read.version, read.kind) == ("abcd1234", 4242, 99, "cats", 3, "zygote"))
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: records.directory.path) == ["abcd1234.json"], "no temporary file left")

        #expect(FileManager.default.createFile(atPath: records.socketPath(id: "abcd1234"), contents: nil))
        records.forget(id: "abcd1234")
        #expect(try FileManager.default.contentsOfDirectory(atPath: records.directory.path).isEmpty)
    }

    @Test(.scratchDirectory) func aRecordInAMissingDirectoryFailsSayingWhere() {
        let home = GustHome(path: "/nonexistent/gust-\(UUID().uuidString.prefix(8))")
        let entry = InstanceRecords.Entry(id: "abcd1234", pid: 1, startTime: 1, app: "cats", version: 1)
        #expect(throws: GustError.self) { try InstanceRecords(home: home).remember(entry) }
    }

    @Test(.scratchDirectory) func smallAndLargeManifestsDecodeAlike() async throws {
        let small = FunctionManifest(
            protocolVersion: 2, runtime: "python 3.11.7", ops: [.init(name: "ping")], handlers: [], schedules: [], hooks: []
        )
        let large = FunctionManifest(
            protocolVersion: 2, runtime: "python 3.11.7", ops: (0..<2000).map { .init(name: "op-number-\($0)") },
            handlers: [], schedules: [], hooks: []
        )
        for manifest in [small, large] {
            let bytes = try JSONEncoder().encode(manifest)
            #expect(try await FunctionManifest.decode(ByteBuffer(bytes: bytes)) == manifest)
        }
        #expect(try JSONEncoder().encode(large).count > FunctionManifest.inlineDecodeBytes, "the large one goes through the pool")
    }
}
