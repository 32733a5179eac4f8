#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation

/// What gustd and a zygote exchange, apart from the socket that carries it
/// (docs/runtime-protocol.md, "Zygotes"): the fork request and its
/// descriptors, and how a pidfd the zygote sent names a process on the host.
/// Pure functions, so unit tests check the encoding without a zygote.
enum ZygoteWire {
    /// The most bytes a message holds, either way. The largest gustd sends is a fork request:
    /// three socket paths (each under 108 bytes, `sun_path`'s limit; escaped as JSON at most 6×
    /// that), two 64-digit secrets and an 8-character id, under 4 KiB; the zygote's answers are
    /// smaller (it cuts a long reason or error, zygote.py `send`). Descriptors travel beside the
    /// bytes (SCM_RIGHTS, at most 8), not in them. gustd and the zygote (zygote.py
    /// `MESSAGE_BYTES`) refuse a longer message with an error rather than read part of it.
    static let messageBytes = 16 * 1024

    /// A fork request: its JSON, and the descriptors sent with it in this order: the fork's stdout
    /// and stderr, then the socket it serves on when gustd bound it (`"listener": true`; else the
    /// zygote binds `socket`), then one `cgroup.procs` file per cgroup it joins (`cgroup_files` says
    /// how many), which it writes itself into before anything else runs.
    static func forkRequest(
        id: String, socketPath: String, environment: [String: String], internalToken: String,
        stdout: Int32, stderr: Int32, listener: Int32? = nil, cgroupFiles: [Int32]
    ) throws -> (body: Data, descriptors: [Int32]) {
        var request: [String: Any] = [
            "fork": id, "socket": socketPath, "environment": environment, "internal_token": internalToken,
            "cgroup_files": cgroupFiles.count,
        ]
        if listener != nil { request["listener"] = true }
        let body = try JSONSerialization.data(withJSONObject: request, options: .sortedKeys)
        guard body.count <= messageBytes else {
            throw Zygote.Failure(description: "its fork request is \(body.count) bytes, more than the \(messageBytes) a zygote reads")
        }
        return (body, [stdout, stderr] + (listener.map { [$0] } ?? []) + cgroupFiles)
    }

    /// One message read from the control socket.
    enum Received: Equatable {
        case message(Data, descriptors: [Int32])
        /// Longer than `messageBytes`: the kernel dropped its rest, `Receiver` closed its descriptors.
        case oversize
        /// The other end is closed (the zygote exited), or the socket failed.
        case closed
    }

    /// Reads the messages of one control socket into one buffer, `messageBytes` and one byte more:
    /// a message that fills it is longer than the bound (a SEQPACKET read takes one message and
    /// drops what does not fit), so it is known as such instead of read as a cut JSON text.
    struct Receiver {
        private var buffer = [UInt8](repeating: 0, count: messageBytes + 1)
        private var fds: [Int32] = [-1, -1, -1, -1]

        /// The next message; blocks until one comes.
        mutating func receive(from socket: Int32) -> Received {
            var count: Int32 = 0
            var received = read(from: socket, count: &count)
            // The zygote exited with a message of gustd's unread (a fork request sent while it
            // imported the app, when it then said it cannot be forked): the kernel reports
            // ECONNRESET once, before what is still queued here. What it said first is read next.
            if received < 0 && errno == ECONNRESET { received = read(from: socket, count: &count) }
            guard received > 0 else { return .closed }
            let descriptors = Array(fds.prefix(Int(count)))
            guard received <= messageBytes else {
                descriptors.forEach { close($0) }
                return .oversize
            }
            return .message(Data(buffer[0..<received]), descriptors: descriptors)
        }

        private mutating func read(from socket: Int32, count: inout Int32) -> Int {
            buffer.withUnsafeMutableBytes { bytes in
                fds.withUnsafeMutableBufferPointer {
                    gust_receive_with_fds(socket, bytes.baseAddress, bytes.count, $0.baseAddress, Int32($0.count), &count)
                }
            }
        }
    }

    /// The pid of the process `pidfd` names, in gustd's PID namespace (the `Pid:` line of its
    /// fdinfo): a zygote in a sandbox numbers its forks in the sandbox's namespace. Nil if the
    /// process has exited (the kernel says -1) or the descriptor is no pidfd.
    static func hostPID(ofPidfd pidfd: Int32) -> pid_t? {
        guard let text = try? String(contentsOfFile: "/proc/self/fdinfo/\(pidfd)", encoding: .utf8) else { return nil }
        return pid(inFdinfo: text)
    }

    /// Whether `descriptor` is a pidfd (its link in `/proc/self/fd` says so): other descriptors'
    /// fdinfo must not pass for one.
    static func isPidfd(_ descriptor: Int32) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)")) == "anon_inode:[pidfd]"
    }

    /// The parent of `pid` (the `PPid:` line of its status), nil once it is gone.
    static func parent(of pid: pid_t) -> pid_t? {
        InstanceProcess.statusField("PPid", of: pid).flatMap { pid_t($0) }
    }

    /// The `Pid:` field of a pidfd's fdinfo; nil when absent or not a live pid (0 or -1).
    static func pid(inFdinfo text: String) -> pid_t? {
        for line in text.split(separator: "\n") where line.hasPrefix("Pid:") {
            guard let pid = pid_t(line.dropFirst(4).trimmingCharacters(in: .whitespaces)), pid > 0 else { return nil }
            return pid
        }
        return nil
    }
}
