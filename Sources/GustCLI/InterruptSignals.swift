import Dispatch
import Foundation

/// Runs `body` with SIGINT, SIGTERM and SIGHUP calling `onSignal` instead of ending the process at
/// once, so that what `body` started is stopped and cleaned up first. A command run in a session of
/// its own (`StreamingCommand`) never gets a terminal's Ctrl-C, or the hangup of a dropped SSH
/// session: without this, `gust` would die and leave it running, orphaned. The default
/// dispositions come back when `body` returns.
enum InterruptSignals {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    static func run<T>(onSignal: @escaping @Sendable () -> Void, _ body: () async throws -> T) async rethrows -> T {
        let sources = signals.map { number in
            signal(number, SIG_IGN)  // seen by the source below, not by the default action
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: onSignal)
            source.resume()
            return source
        }
        // A dropped SSH session also closes stdout: the lines printed while the command stops must
        // not kill `gust` (SIGPIPE) before it has.
        signal(SIGPIPE, SIG_IGN)
        defer {
            sources.forEach { $0.cancel() }
            (signals + [SIGPIPE]).forEach { signal($0, SIG_DFL) }
        }
        return try await body()
    }
}
