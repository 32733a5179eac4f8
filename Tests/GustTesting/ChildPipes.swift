#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A child's stdin, stdout and stderr as pipes, served on a thread of their own with `poll`: the
/// input written as the child reads it, both outputs read as the child writes them. So a child
/// that fills one pipe while nobody reads the other never stalls, and the caller is free to wait
/// (bounded) for the child's exit meanwhile. Used by `Command.run`.
final class ChildPipes: Sendable {
    /// The ends the child gets as 0, 1 and 2; closed here once it has them (`start()`).
    let childInput: Int32
    let childOutput: Int32
    let childError: Int32
    /// This side's ends: the input's writing end, the outputs' reading ends.
    private let input: Int32
    private let output: Int32
    private let error: Int32
    private let bytes: Data

    private struct State {
        var output = Data()
        var error = Data()
        /// Set by `finish` when the outputs did not end in time: read what is there and stop.
        var stopping = false
    }
    private let state = Mutex(State())
    private enum Reading { case read, nothingYet, ended }
    private let ended = DispatchSemaphore(value: 0)

    /// `input`: what the child reads from stdin before its end.
    init(input bytes: Data) throws {
        let stdin = try ChildProcess.pipe()
        let stdout: (read: Int32, write: Int32), stderr: (read: Int32, write: Int32)
        do {
            stdout = try ChildProcess.pipe()
            do { stderr = try ChildProcess.pipe() } catch {
                [stdout.read, stdout.write].forEach { _ = close($0) }
                throw error
            }
        } catch {
            [stdin.read, stdin.write].forEach { _ = close($0) }
            throw error
        }
        (childInput, self.input) = stdin
        (self.output, childOutput) = stdout
        (self.error, childError) = stderr
        self.bytes = bytes
    }

    /// The child has its ends: closes them here and starts serving the pipes.
    func start() {
        [childInput, childOutput, childError].forEach { _ = close($0) }
        Thread { [self] in
            serve()
            ended.signal()
        }.start()
    }

    /// The child could not be started: closes every end.
    func abandon() {
        [childInput, childOutput, childError, input, output, error].forEach { _ = close($0) }
    }

    /// Waits up to `seconds` for both outputs to end (every holder of their writing ends gone),
    /// then takes what was read; past that, what is in the pipes by then.
    func finish(within seconds: Double) -> (output: Data, error: Data) {
        if ended.wait(timeout: .now() + seconds) == .timedOut {
            state.withLock { $0.stopping = true }
            _ = ended.wait(timeout: .now() + 60)  // the thread sees it within 100 ms
        }
        return state.withLock { ($0.output, $0.error) }
    }

    private func serve() {
        // A child gone before reading all its input: the write fails with EPIPE, no SIGPIPE for
        // the test process (the signal stays pending on this thread, and ends with it).
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
        for fd in [input, output, error] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }

        var pending = bytes[...]
        var writing = input
        var reading: [Int32] = [output, error]
        if pending.isEmpty { close(writing); writing = -1 }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)

        /// Reads what `fd` has now. At its end (or an error) it is closed.
        func read(_ fd: Int32) -> Reading {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got > 0 {
                let chunk = Data(buffer[..<got])
                state.withLock { fd == output ? $0.output.append(chunk) : $0.error.append(chunk) }
                return .read
            }
            if got < 0 && (errno == EAGAIN || errno == EINTR) { return .nothingYet }
            close(fd)
            return .ended
        }

        while !reading.isEmpty {
            if state.withLock({ $0.stopping }) {
                // Whatever is in the pipes now, then done.
                for fd in reading {
                    var last = Reading.read
                    while last == .read { last = read(fd) }
                    if last == .nothingYet { close(fd) }
                }
                break
            }
            var fds = reading.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if writing >= 0 { fds.append(pollfd(fd: writing, events: Int16(POLLOUT), revents: 0)) }
            guard poll(&fds, nfds_t(fds.count), 100) > 0 else { continue }
            for entry in fds where entry.revents != 0 {
                if entry.fd == writing {
                    let wrote = pending.withUnsafeBytes { write(writing, $0.baseAddress, $0.count) }
                    if wrote > 0 { pending = pending.dropFirst(wrote) }
                    if pending.isEmpty || (wrote < 0 && errno != EAGAIN && errno != EINTR) {
                        close(writing)
                        writing = -1
                    }
                } else if read(entry.fd) == .ended {
                    reading.removeAll { $0 == entry.fd }
                }
            }
        }
        if writing >= 0 { close(writing) }
    }
}
