#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustCore

/// A file per running instance in `run/instances/`: its pid and the process's
/// start time, removed (with its socket) as soon as gustd sees the process
/// exit. A gustd killed with SIGKILL leaves its instances running; the
/// next gustd reads these files and stops exactly those processes (the start
/// time tells a live instance from an unrelated process that reused its pid),
/// and what they daemonized (`InstanceStragglers`).
struct InstanceRecords: Sendable {
    struct Entry: Codable, Sendable {
        var id: String
        var pid: Int32
        var startTime: UInt64
        var app: String
        var version: Int
        /// "zygote" for a release's zygote (Launch/Zygote.swift), nil for an instance.
        var kind: String? = nil
    }

    let directory: URL

    init(home: GustHome) {
        directory = home.run.appendingPathComponent("instances")
    }

    func prepare() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func socketPath(id: String) -> String { directory.appendingPathComponent("\(id).sock").path }
    /// A sandboxed instance's socket directory, the one path it shares with gustd.
    func socketDirectory(id: String) -> String { directory.appendingPathComponent(id).path }
    private func file(id: String) -> URL { directory.appendingPathComponent("\(id).json") }

    /// Written whole under a temporary name and renamed into place (a reader never sees half a
    /// record), but not synced: the record serves a gustd that dies while its instances live on,
    /// and a machine that goes down takes its instances with it. An fsync here held every
    /// instance start, on an event loop, for as long as the disk took (milliseconds on a busy one).
    func remember(_ entry: Entry) throws {
        let data = try JSONEncoder().encode(entry)
        let target = file(id: entry.id)
        let temporary = directory.appendingPathComponent(".\(entry.id).json.tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw GustError.internal("Cannot write \(temporary.path): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == data.count, rename(temporary.path, target.path) == 0 else {
            let reason = written < 0 || written == data.count ? String(cString: strerror(errno)) : "short write"
            unlink(temporary.path)
            throw GustError.internal("Cannot write \(target.path): \(reason)")
        }
    }

    func forget(id: String) {
        try? FileManager.default.removeItem(at: file(id: id))
        try? FileManager.default.removeItem(atPath: socketPath(id: id))
        NoFollowPath.remove(socketDirectory(id: id), below: directory.path)  // the app wrote in it
    }

    /// Stops every instance a previous gustd left behind; returns what it stopped.
    func sweepOrphans() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var stopped: [Entry] = []
        for name in names where name.hasSuffix(".json") {
            let id = String(name.dropLast(5))
            defer {
                // Also what it daemonized: alive even where the instance itself is gone.
                InstanceStragglers.stop(marker: InstanceStragglers.marker(id: id))
                forget(id: id)
            }
            guard let data = FileManager.default.contents(atPath: file(id: id).path),
                let entry = try? JSONDecoder().decode(Entry.self, from: data),
                entry.pid > 1, InstanceProcess.startTime(of: entry.pid) == entry.startTime
            else { continue }
            kill(-entry.pid, SIGTERM)
            // Bounded: 3 s for a clean exit, then SIGKILL.
            for _ in 0..<60 where InstanceProcess.startTime(of: entry.pid) == entry.startTime && !Self.isZombie(entry.pid) {
                usleep(50_000)
            }
            if InstanceProcess.startTime(of: entry.pid) == entry.startTime { kill(-entry.pid, SIGKILL) }
            stopped.append(entry)
        }
        // Sockets without a record (a crash between bind and record) are garbage too.
        // A socket directory is the app's to write in: removed without following its links.
        for name in names where name.hasSuffix(".sock") || !name.contains(".") {
            NoFollowRemoval.removeTree(at: directory.appendingPathComponent(name))
        }
        return stopped
    }

    /// SIGKILL to every instance on record, at once (gustd is told to stop now).
    func killAll() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path),
                let entry = try? JSONDecoder().decode(Entry.self, from: data),
                entry.pid > 1, InstanceProcess.startTime(of: entry.pid) == entry.startTime
            else { continue }
            kill(-entry.pid, SIGKILL)
        }
    }

    private static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }
}
