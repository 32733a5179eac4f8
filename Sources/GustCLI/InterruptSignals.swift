import Dispatch
import Foundation

/// Runs `body` with SIGINT, SIGTERM and SIGHUP calling `onSignal` instead of ending the process at
/// once, so that what `body` started is stopped and cleaned up first. A command run in a session of
/// its own (`StreamingCommand`) never gets a terminal's Ctrl-C, or the hangup of a dropped SSH
/// session: without this, `gust` would die and leave it running, orphaned. The dispositions
/// come back as they were when `body` returns.
enum InterruptSignals {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    static func run<T>(onSignal: @escaping @Sendable () -> Void, _ body: () async throws -> T) async rethrows -> T {
        // Seen by the sources below, not by the default action; SIGPIPE too, because a dropped SSH
        // session also closes stdout, and the lines printed while the command stops must not kill
        // `gust` before it has.
        let before = (signals + [SIGPIPE]).map { ($0, signal($0, SIG_IGN)) }
        let sources = signals.map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: onSignal)
            source.resume()
            return source
        }
        defer {
            sources.forEach { $0.cancel() }
            for (number, handler) in before { signal(number, handler) }  // as they were
        }
        return try await body()
    }
}
