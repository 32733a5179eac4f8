import Foundation
import Synchronization
@testable import GustDaemon
import Testing

/// `InstanceProcess.outputIsDelivered` is true only once what the process wrote is delivered:
/// a schedule run waits on it before it logs "Run finished", and `gust dev --run` reads the log
/// right after. An empty pipe alone is not enough: the reader may hold the bytes undelivered.
@Suite struct InstanceOutputDeliveryTests {
    @Test func linesTakenFromThePipeButNotYetDeliveredAreNotDelivered() async throws {
        let entered = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let delivered = Mutex<[String]>([])
        let process = try InstanceProcess(
            executable: "/bin/sh", arguments: ["-c", "echo tick ran; exec sleep 30"], environment: [:],
            directory: "/",
            onOutput: { lines, _ in
                entered.signal()
                gate.wait()  // the reader is held between taking the bytes and delivering them
                delivered.withLock { $0 += lines }
            },
            onExit: { _ in }
        )
        defer { process.signal(SIGKILL) }
        try #require(entered.wait(timeout: .now() + 10) == .success, "the line reached the reader")
        // The pipe is empty now (the reader took the line): still not delivered.
        #expect(!process.outputIsDelivered)
        gate.signal()
        let deadline = Date().addingTimeInterval(10)
        while !process.outputIsDelivered, Date() < deadline { usleep(1000) }
        #expect(process.outputIsDelivered)
        #expect(delivered.withLock { $0 } == ["tick ran"])
    }

    @Test func aProcessThatWroteNothingHasDeliveredEverything() throws {
        let process = try InstanceProcess(
            executable: "/bin/sh", arguments: ["-c", "exec sleep 30"], environment: [:], directory: "/",
            onOutput: { _, _ in }, onExit: { _ in }
        )
        defer { process.signal(SIGKILL) }
        #expect(process.outputIsDelivered)
    }
}
