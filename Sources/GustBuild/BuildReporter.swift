#if canImport(Glibc)
import Glibc
#endif
public import Foundation
import GustCore
import Synchronization

/// The one place a push's output goes through.
///
/// Each line is written to the pusher at once (the hook's stdout is git's
/// sideband, so it shows as `remote: …` while the build runs) and kept for the
/// release's build log. In gustd, which runs a push's build, lines go to a
/// sink instead: the admin API's stream, which the hook prints (`init(sink:)`).
/// Heroku's conventions: `-----> ` starts a step, seven
/// spaces indent its detail, ` !     ` marks an error.
public final class BuildReporter: Sendable {
    private struct State {
        var log = ""
        var lastWrite = ContinuousClock.now
        var secrets: [String] = []
    }

    private let state = Mutex(State())
    private let descriptor: Int32
    /// Where lines go instead of `descriptor`, each without its newline.
    private let sink: (@Sendable (String) -> Void)?
    private let clock = ContinuousClock()

    /// `descriptor` is where lines go; the hook passes stdout.
    public init(descriptor: Int32 = STDOUT_FILENO) {
        self.descriptor = descriptor
        sink = nil
    }

    /// Lines go to `sink` (gustd: a build's stream to the hook), each without its newline.
    public init(sink: @escaping @Sendable (String) -> Void) {
        descriptor = -1
        self.sink = sink
    }

    public func step(_ text: String) { emit("-----> " + text) }
    public func detail(_ text: String) { emit("       " + text) }
    public func error(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) { emit(" !     " + line) }
    }

    /// A line already formatted by a buildpack, passed through as it is.
    public func raw(_ line: String) { emit(line) }

    /// Values to mask wherever they would appear: the app's secret config.
    public func mask(_ secrets: [String]) {
        state.withLock { $0.secrets = secrets.filter { !$0.isEmpty } }
    }

    /// Everything reported so far.
    public var log: String { state.withLock { $0.log } }

    /// How long it has been since the last line reached the pusher.
    public var silence: Duration { state.withLock { clock.now - $0.lastWrite } }

    /// One line to the pusher (or the sink) and the log. What the line holds is the build's, the
    /// app's or a dependency's text, so what a terminal would act on is shown escaped
    /// (`visibleAtTerminal`), a line break inside it included: git's client shows a carriage
    /// return as the start of a new `remote:` line, and a line of Gust's own (`-----> v7 is
    /// live`) could otherwise be forged after one, or hidden by an escape sequence.
    private func emit(_ line: String) {
        state.withLock { state in
            let shown = (line.hasSuffix("\n") ? String(line.dropLast()) : line).maskingSecrets(state.secrets).visibleAtTerminal
            state.log += shown + "\n"
            state.lastWrite = clock.now
            // Written under the lock so concurrent lines never interleave.
            if let sink {
                sink(shown)
            } else {
                Self.writeAll(shown + "\n", to: descriptor)
            }
        }
    }

    private static func writeAll(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return  // The pusher went away; the log still keeps the line.
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
