import Foundation
import GustCore
import GustTesting
import Testing

/// `gustd --event-loops N`: the loops are made before ArgumentParser runs
/// (Sources/gustd/main.swift), so this checks the threads a real gustd runs.
@Suite(.timeLimit(.minutes(20)))
struct EventLoopsTests {
    /// The distinct SwiftNIO event loop threads of `pid`, by name (`NIO-SGLTN-<group>-#<loop>`;
    /// threads a loop thread starts inherit its name, so names, not threads, are counted).
    func loopThreads(of pid: Int32) throws -> Set<String> {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8) }
        return Set(names.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { $0.hasPrefix("NIO-SGLTN-") })
    }

    @Test(.scratchDirectory) func gustdServesWithTheLoopsItIsGiven() throws {
        for count in [1, 3] {
            let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home-\(count)").path)
            let gustd = try GustdProcess(home: home, arguments: ["--event-loops", "\(count)"])
            let answer = try HTTPClient.request(port: gustd.port, "GET", "/apps/nobody/")
            #expect(answer.status == 404, "it serves: \(answer.text)")
            let loops = try loopThreads(of: gustd.pid)
            #expect(loops.count == count, "\(loops)")
            let log = (try? String(contentsOf: gustd.log, encoding: .utf8)) ?? ""
            #expect(log.contains(count == 1 ? "1 event loop serves connections" : "\(count) event loops serve connections"), "\(log)")
            gustd.stop()
        }
    }

    /// The default is half the cores gustd sees (SwiftNIO's count, which heeds cpusets and CPU
    /// quotas, so it is read from gustd's log rather than worked out here), at least one.
    @Test(.scratchDirectory) func withoutTheOptionHalfTheCoresServe() throws {
        let gustd = try GustdProcess(home: GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path))
        defer { gustd.stop() }
        let answer = try HTTPClient.request(port: gustd.port, "GET", "/apps/nobody/")
        #expect(answer.status == 404, "it serves: \(answer.text)")
        let log = (try? String(contentsOf: gustd.log, encoding: .utf8)) ?? ""
        let said = try #require(log.firstMatch(of: /(\d+) event loops? serves? connections \(half of (\d+) cores, at least one/), "\(log)")
        let (loops, cores) = (Int(said.1)!, Int(said.2)!)
        #expect(loops == max(1, cores / 2), "\(log)")
        #expect(try loopThreads(of: gustd.pid).count == loops)
        #expect((1...Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))).contains(cores), "cores gustd may use: \(cores)")
    }

    @Test(.scratchDirectory) func aCountOutOfRangeIsRefusedBeforeAnythingRuns() throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        for (bad, said) in [("0", "--event-loops takes 1 to 256"), ("257", "--event-loops takes 1 to 256"), ("many", "'many' is invalid for '--event-loops")] {
            let result = try Command.run(
                GustBinaries.gustd, ["--home", home.path, "--http", "127.0.0.1:0", "--event-loops", bad], timeout: 30)
            #expect(result.status != 0, "\(bad): \(result.output)")
            #expect(result.output.contains(said), "\(bad): \(result.output)")
        }
        #expect(!FileManager.default.fileExists(atPath: home.run.appendingPathComponent("gustd.http").path), "nothing was served")
    }
}
