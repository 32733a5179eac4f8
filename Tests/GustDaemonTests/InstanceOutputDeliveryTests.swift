import CGustSystem
import Foundation
import GustTesting
import Synchronization
@testable import GustDaemon
import Testing

/// `InstanceProcess.outputMark` and `hasDelivered`: a schedule run waits until what its instance
/// had written when it answered is delivered before it logs "Run finished", and `gust dev --run`
/// reads the log right after. An empty pipe alone is not enough (the reader may hold the bytes
/// undelivered), and a pipe that never empties (a thread that keeps printing) must not hold the
/// wait to its bound.
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
        let mark = process.outputMark()
        #expect(!process.hasDelivered(mark))
        gate.signal()
        let deadline = Date().addingTimeInterval(10)
        while !process.hasDelivered(mark), Date() < deadline { usleep(1000) }
        #expect(process.hasDelivered(mark))
        #expect(delivered.withLock { $0 } == ["tick ran"])
    }

    /// A reader makes no line the app's log bound has no room for: it counts it, and keeps the
    /// start of the next line, so that lines keep their bounds when the bound has room again.
    @Test func aReaderMakesOnlyTheLinesTheBoundHasRoomFor() throws {
        let allowances = Mutex<[Int?]>([0, 3 * LogThrottle.leastLineCost, nil])
        let (delivered, dropped) = try readLines(
            allowance: { allowances.withLock { $0.isEmpty ? nil : $0.removeFirst() } },
            writes: [Array((String(repeating: "none\n", count: 10_000) + "first of the next ba").utf8),
                     Array("tch\nb\nc\nd\ne\n".utf8),  // room for three
                     Array("kept\n".utf8)])  // unbounded
        #expect(dropped == 10_000 + 2)
        #expect(delivered == ["first of the next batch", "b", "c", "kept"])
    }

    /// What `InstanceProcess.readLines` makes of `writes`, each read as a batch of its own, with
    /// the bound's `allowance` asked once a batch: the lines delivered and the count dropped.
    func readLines(allowance: @escaping @Sendable () -> Int?, writes: [[UInt8]]) throws -> (delivered: [String], dropped: Int) {
        var pipe: [Int32] = [0, 0]
        try #require(gust_pipe_cloexec(&pipe) == 0)
        let (readEnd, writeEnd) = (pipe[0], pipe[1])
        let delivered = Mutex<[String]>([])
        let dropped = Mutex(0)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            InstanceProcess.readLines(
                from: readEnd, take: { read(readEnd, $0, $1) }, done: { _ in },
                allowance: allowance, dropped: { count in dropped.withLock { $0 += count } }
            ) { lines in delivered.withLock { $0 += lines } }
            finished.signal()
        }
        for bytes in writes {
            _ = bytes.withUnsafeBytes { write(writeEnd, $0.baseAddress, $0.count) }
            usleep(50_000)  // read as a batch of its own
        }
        close(writeEnd)
        try #require(finished.wait(timeout: .now() + 10) == .success)
        close(readEnd)
        return (delivered.withLock { $0 }, dropped.withLock { $0 })
    }

    /// The count of the lines a reader drops in one pass, and where the last ends
    /// (`InstanceProcess.newlines`), against a byte-by-byte look, over bytes that are newlines, bytes that differ from one only in the high
    /// bit, and every offset and length around a word.
    @Test func newlinesAreCountedAsByteByByte() {
        var random = SplitMix(seed: 7)
        let alphabet: [UInt8] = [0x0A, 0x8A, 0x0B, 0x00, 0xFF, 0x7F, 0x09, 0x41]
        let bytes = (0..<4099).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in [0, 1, 7, 8, 9, 15, 16, 17, 1000, 4090 - start] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    let expected = slice.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                    let found = InstanceProcess.newlines(in: slice.baseAddress ?? all.baseAddress!, count: length)
                    #expect(found.count == expected)
                    #expect(found.last == slice.lastIndex(of: 0x0A), "start \(start), length \(length)")
                }
            }
        }
    }

    /// A line without end read while the bound has no room is cut at 64 KiB and counted as one, as
    /// with room; its end, in a later read, is a line of its own.
    @Test func aLongLineWhileTheBoundHasNoRoomIsCutAndCountedOnce() throws {
        let chunk = [UInt8](repeating: 0x78, count: 40 * 1024)
        let (delivered, dropped) = try readLines(allowance: { 0 }, writes: [chunk, chunk, chunk, Array("end\n\n\n".utf8)])
        // 80 KiB without end: one cut line; then 40 KiB, whose "end" ends a line; two empty ones.
        #expect(dropped == 1 + 3)
        #expect(delivered.isEmpty)
    }

    /// A process that exits while something else holds its pipes (here a child it left running; a
    /// zygote holding its forks' pipes is the same) has its readers ended after the grace: they,
    /// their threads and descriptors stayed for as long as the holder did.
    @Test func readersEndAfterTheGraceWhateverStillHoldsThePipes() async throws {
        let exited = Mutex(false)
        let process = try InstanceProcess(
            executable: "/bin/sh", arguments: ["-c", "echo hello; sleep 30 & exit 0"], environment: [:], directory: "/",
            onOutput: { _, _ in }, onExit: { _ in exited.withLock { $0 = true } }
        )
        defer { process.signal(SIGKILL) }
        _ = await process.exitStatus()
        #expect(exited.withLock { $0 })
        let deadline = ContinuousClock.now + .seconds(10)
        while process.readersReading > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(process.readersReading == 0, "the sleep still holds both pipes")
    }

    @Test func aProcessThatWroteNothingHasDeliveredEverything() throws {
        let process = try InstanceProcess(
            executable: "/bin/sh", arguments: ["-c", "exec sleep 30"], environment: [:], directory: "/",
            onOutput: { _, _ in }, onExit: { _ in }
        )
        defer { process.signal(SIGKILL) }
        #expect(process.hasDelivered(process.outputMark()))
    }

    /// Everything written before the mark, in the pipe or in a reader's hands, is delivered once
    /// `hasDelivered` says so; the line written last is the proof.
    @Test func whatWasWrittenBeforeTheMarkIsDeliveredWhenItSaysSo() throws {
        let lines = Mutex<[String]>([])
        // 200,000 lines (1.3 MB) through a 64 KiB pipe, then the last one; then it only sleeps.
        let process = try InstanceProcess(
            executable: "/bin/sh", arguments: ["-c", "seq 1 200000; echo the end; exec sleep 30"], environment: [:], directory: "/",
            onOutput: { batch, _ in lines.withLock { $0 += batch } }, onExit: { _ in }
        )
        defer { process.signal(SIGKILL) }
        let deadline = Date().addingTimeInterval(30)
        // Written to the end once the shell has become `sleep`; some of it may still be in the pipe.
        while (try? String(contentsOfFile: "/proc/\(process.pid)/comm", encoding: .utf8)) != "sleep\n", Date() < deadline {
            usleep(1000)
        }
        let mark = process.outputMark()
        while !process.hasDelivered(mark), Date() < deadline { usleep(1000) }
        #expect(process.hasDelivered(mark))
        #expect(lines.withLock { $0.last } == "the end")
    }

    /// A process that never stops writing (an app's chatty background thread): what it wrote
    /// before the mark is delivered, whatever it writes after. Here `cat` writes what the test
    /// feeds it, and the reader is held on the line after the mark, undelivered: the state a
    /// wait for "pipes empty, readers idle" would never leave.
    @Test func whatIsWrittenAfterTheMarkIsNotWaitedFor() throws {
        var input: [Int32] = [0, 0]
        try #require(gust_pipe_cloexec(&input) == 0)
        defer { close(input[1]) }
        let delivered = Mutex<[String]>([])
        let holding = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let process = try InstanceProcess(
            executable: "/bin/cat", environment: [:], directory: "/", standardInput: input[0],
            onOutput: { lines, _ in
                if lines.contains("after") {
                    holding.signal()
                    _ = gate.wait(timeout: .now() + 10)
                }
                delivered.withLock { $0 += lines }
            },
            onExit: { _ in }
        )
        defer {
            gate.signal()
            process.signal(SIGKILL)
        }
        func feed(_ line: String) { _ = line.utf8CString.withUnsafeBytes { write(input[1], $0.baseAddress, line.utf8.count) } }
        feed("before\n")
        let deadline = Date().addingTimeInterval(10)
        while delivered.withLock({ $0 }) != ["before"], Date() < deadline { usleep(1000) }
        let mark = process.outputMark()
        #expect(process.hasDelivered(mark))
        feed("after\n")
        try #require(holding.wait(timeout: .now() + 10) == .success, "the reader holds the line after the mark")
        #expect(process.hasDelivered(mark), "the line after the mark, taken and undelivered, is not waited for")
        #expect(!process.hasDelivered(process.outputMark()), "a mark taken now waits for it")
    }
}
