import Synchronization

/// The log streams open per console token. Each polls the app's log four times a second, and the
/// store every few seconds, for up to ten minutes: without a bound one token (a tenant's) could
/// open a thousand from one address, and any number behind a trusted proxy, which every address
/// shares. A slot is held by the stream's response and given back when that is gone, whether its
/// body ran to its end, its client left, or it was never written.
final class ConsoleStreamSlots: Sendable {
    /// Enough for a person with a tab per app or function.
    static let perToken = 8

    private let open = Mutex<[Int: Int]>([:])
    let limit: Int

    init(perToken limit: Int = perToken) { self.limit = limit }

    /// A slot for `token`'s next stream, or nil if it has `limit` open.
    func take(token: Int) -> Slot? {
        let taken = open.withLock { open -> Bool in
            guard open[token, default: 0] < limit else { return false }
            open[token, default: 0] += 1
            return true
        }
        return taken ? Slot { [self] in release(token) } : nil
    }

    /// How many streams `token` has open.
    func count(token: Int) -> Int { open.withLock { $0[token, default: 0] } }

    private func release(_ token: Int) {
        open.withLock { open in
            open[token, default: 1] -= 1
            if open[token] == 0 { open[token] = nil }
        }
    }

    /// Given back once nothing holds it.
    final class Slot: Sendable {
        private let release: @Sendable () -> Void
        init(release: @escaping @Sendable () -> Void) { self.release = release }
        deinit { release() }
    }
}
