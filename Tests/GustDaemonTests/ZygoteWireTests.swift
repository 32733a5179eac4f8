#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustBuild
import GustCore
@testable import GustDaemon
import Testing

/// What gustd sends a zygote and how it reads what comes back, without a zygote; and
/// where `gust ps` takes a sandboxed instance's memory from, with a fake cgroup mount.
@Suite struct ZygoteWireTests {
    @Test func aForkRequestSendsItsOutputsThenOneDescriptorPerCgroupFileAndSaysHowMany() throws {
        let (body, descriptors) = try ZygoteWire.forkRequest(
            id: "a1b2c3d4", socketPath: "/run/gust/a1b2c3d4/instance.sock", environment: ["GUST_INSTANCE": "a1b2c3d4"],
            internalToken: "secret", stdout: 11, stderr: 12, cgroupFiles: [21, 22, 23]
        )
        #expect(descriptors == [11, 12, 21, 22, 23])
        let request = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(request["fork"] as? String == "a1b2c3d4")
        #expect(request["socket"] as? String == "/run/gust/a1b2c3d4/instance.sock")
        #expect(request["cgroup_files"] as? Int == 3)
        #expect(request["internal_token"] as? String == "secret")
        #expect(request["cgroups"] == nil, "no path: a sandboxed fork could not reach it, and gustd opened the files")

        let (_, none) = try ZygoteWire.forkRequest(
            id: "x", socketPath: "/s", environment: [:], internalToken: "t", stdout: 1, stderr: 2, cgroupFiles: []
        )
        #expect(none == [1, 2])
    }

    @Test func aSocketGustdBoundIsSentAfterTheOutputsAndBeforeTheCgroupFilesAndSaidSo() throws {
        let (body, descriptors) = try ZygoteWire.forkRequest(
            id: "a1b2c3d4", socketPath: "/run/gust/a1b2c3d4/instance.sock", environment: [:], internalToken: "secret",
            stdout: 11, stderr: 12, listener: 15, cgroupFiles: [21, 22]
        )
        #expect(descriptors == [11, 12, 15, 21, 22])
        let request = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(request["listener"] as? Bool == true)
        #expect(request["cgroup_files"] as? Int == 2)
        let (legacy, _) = try ZygoteWire.forkRequest(
            id: "x", socketPath: "/s", environment: [:], internalToken: "t", stdout: 1, stderr: 2, cgroupFiles: []
        )
        #expect((try JSONSerialization.jsonObject(with: legacy) as? [String: Any])?["listener"] == nil, "the zygote binds /s itself")
    }

    @Test func theLargestForkRequestFitsAMessageAndALongerOneIsRefusedBeforeItIsSent() throws {
        // Socket paths at sun_path's limit (107 bytes), slashes escaped; the secrets as long as gustd's.
        let path = "/" + String(repeating: "a/", count: 53)
        let secret = String(repeating: "f", count: 64)
        let (largest, _) = try ZygoteWire.forkRequest(
            id: "a1b2c3d4", socketPath: path, environment: [
                "GUST_INSTANCE": "a1b2c3d4", "GUST_SOCKET": path, "GUST_RECORDS_SOCKET": path, "GUST_RECORDS_TOKEN": secret,
            ], internalToken: secret, stdout: 11, stderr: 12, cgroupFiles: [21, 22, 23]
        )
        #expect(largest.count < ZygoteWire.messageBytes / 4, "\(largest.count) bytes")

        let error = #expect(throws: Zygote.Failure.self) {
            try ZygoteWire.forkRequest(
                id: "a1b2c3d4", socketPath: "/s", environment: ["GUST_INSTANCE": String(repeating: "x", count: ZygoteWire.messageBytes)],
                internalToken: secret, stdout: 11, stderr: 12, cgroupFiles: []
            )
        }
        #expect(error?.description.contains("more than the \(ZygoteWire.messageBytes) a zygote reads") == true, "\(String(describing: error))")
    }

    @Test func aMessageLongerThanTheBoundIsOversizeAndItsDescriptorsAreClosed() throws {
        var pair: [Int32] = [0, 0]
        #expect(gust_seqpacket_pair(&pair) == 0)
        defer { pair.forEach { close($0) } }
        var pipe: [Int32] = [0, 0]
        #expect(gust_pipe_cloexec(&pipe) == 0)
        defer { close(pipe[0]) }
        func send(_ bytes: [UInt8], _ fds: [Int32]) {
            let sent = bytes.withUnsafeBytes { body in
                fds.withUnsafeBufferPointer { gust_send_with_fds(pair[1], body.baseAddress, body.count, $0.baseAddress, Int32(fds.count)) }
            }
            #expect(sent == bytes.count)
        }
        var receiver = ZygoteWire.Receiver()

        send([UInt8](repeating: UInt8(ascii: "x"), count: ZygoteWire.messageBytes + 1), [pipe[1]])
        close(pipe[1])
        #expect(receiver.receive(from: pair[0]) == .oversize)
        // Non-blocking: with a writer left (the descriptor kept open) the read says EAGAIN instead of waiting.
        _ = fcntl(pipe[0], F_SETFL, O_NONBLOCK)
        var byte: UInt8 = 0
        #expect(read(pipe[0], &byte, 1) == 0, "the pipe's write end that came with it is closed: no writer is left")

        let exact = [UInt8](repeating: UInt8(ascii: "y"), count: ZygoteWire.messageBytes)
        send(exact, [])
        #expect(receiver.receive(from: pair[0]) == .message(Data(exact), descriptors: []), "a message of the bound is read whole")

        send(Array(#"{"exited":7,"status":0}"#.utf8), [])
        #expect(receiver.receive(from: pair[0]) == .message(Data(#"{"exited":7,"status":0}"#.utf8), descriptors: []))

        shutdown(pair[1], Int32(SHUT_WR))
        #expect(receiver.receive(from: pair[0]) == .closed)
    }

    /// A zygote that exits with a request of gustd's unread (one sent while it imported the app,
    /// then `{"ready": false}`) makes the kernel report ECONNRESET on gustd's end before the
    /// messages still queued there: what it said before it exited is read all the same.
    @Test func whatAZygoteSaidBeforeItExitedWithARequestUnreadIsStillRead() throws {
        var pair: [Int32] = [0, 0]
        #expect(gust_seqpacket_pair(&pair) == 0)
        defer { close(pair[0]) }
        func send(_ text: String, on socket: Int32) {
            let bytes = Array(text.utf8)
            let sent = bytes.withUnsafeBytes { gust_send_with_fds(socket, $0.baseAddress, $0.count, nil, 0) }
            #expect(sent == bytes.count)
        }
        send(#"{"fork":"abcdefgh"}"#, on: pair[0])  // gustd's request, never read
        send(#"{"ready":false,"reason":"a thread"}"#, on: pair[1])
        close(pair[1])  // the zygote exits

        var receiver = ZygoteWire.Receiver()
        #expect(receiver.receive(from: pair[0]) == .message(Data(#"{"ready":false,"reason":"a thread"}"#.utf8), descriptors: []))
        #expect(receiver.receive(from: pair[0]) == .closed)
    }

    @Test func aPidfdsFdinfoGivesThePidInGustdsNamespace() {
        // A fork in a sandbox: NSpid lists its pid in each namespace down to the sandbox's; Pid is gustd's.
        let fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1052\nPid:\t48211\nNSpid:\t48211\t7\n"
        #expect(ZygoteWire.pid(inFdinfo: fdinfo) == 48211)
        #expect(ZygoteWire.pid(inFdinfo: "Pid:\t-1\nNSpid:\t-1\n") == nil, "an exited process")
        #expect(ZygoteWire.pid(inFdinfo: "pos:\t0\n") == nil, "not a pidfd")
    }

    @Test func aSandboxedInstancesMemoryIsItsCgroupsRSS() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for path in ["memory/memory.limit_in_bytes", "memory/cgroup.procs", "pids/cgroup.procs"] {
            let url = URL(fileURLWithPath: root + "/" + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data().write(to: url)
        }
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        let cgroup = try InstanceCgroup(mechanism: mechanism, app: try AppName("cats"), id: "a1b2", limits: AppLimits())
        #expect(cgroup.memoryBytes == nil, "nothing to read yet")
        // v1: total_rss (the app's anonymous memory), not cache nor usage_in_bytes.
        let stat = "cache 1048576\nrss 4096\nmapped_file 0\ntotal_cache 1048576\ntotal_rss 3145728\n"
        try Data(stat.utf8).write(to: URL(fileURLWithPath: root + "/memory/gust/cats/a1b2/memory.stat"))
        #expect(cgroup.memoryBytes == 3 << 20)
        #expect(InstanceCgroup.field("rss", in: stat) == 4096, "a field, not a longer name that starts with it")
    }

    @Test func onV2ItIsMemoryCurrent() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("memory pids cpu\n".utf8).write(to: URL(fileURLWithPath: root + "/cgroup.controllers"))
        let mechanism = LimitMechanism.detect(root: root, name: "gust")
        let cgroup = try InstanceCgroup(mechanism: mechanism, app: try AppName("cats"), id: "a1b2", limits: AppLimits())
        try Data("5242880\n".utf8).write(to: URL(fileURLWithPath: root + "/gust/cats/a1b2/memory.current"))
        #expect(cgroup.memoryBytes == 5 << 20)
    }
}
