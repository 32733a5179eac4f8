public import Foundation
import GustCore
import Synchronization

/// A signed-in browser: named by a random id in its cookie, held only here (a
/// gustd restart signs everyone out), ended by sign-out, by its expiry, or by
/// its token being revoked or expiring (checked on every request).
public struct ConsoleSession: Sendable, Equatable {
    public var id: String
    public var tokenID: Int
    /// Sent back in every form: a POST without it is refused.
    public var csrf: String
    public var expiresAt: Date
}

/// Every session gustd holds; one owner, behind a lock.
public final class ConsoleSessions: Sendable {
    /// How long a session lasts after sign-in.
    public static let lifetime: TimeInterval = 12 * 3600
    /// Sessions at most (the oldest go first): a flood of sign-ins cannot grow memory without bound.
    static let capacity = 10_000

    private let sessions = Mutex<[String: ConsoleSession]>([:])
    /// A line for the next page a session sees ("v4 is live"), after a redirect.
    private let flashes = Mutex<[String: (text: String, isError: Bool)]>([:])

    public init() {}

    public func open(tokenID: Int, now: Date = Date()) -> ConsoleSession {
        let session = ConsoleSession(
            id: Store.randomURLSafe(bytes: 32), tokenID: tokenID, csrf: Store.randomURLSafe(bytes: 32),
            expiresAt: now.addingTimeInterval(Self.lifetime)
        )
        sessions.withLock { all in
            all = all.filter { $0.value.expiresAt > now }
            if all.count >= Self.capacity, let oldest = all.min(by: { $0.value.expiresAt < $1.value.expiresAt }) {
                all[oldest.key] = nil
            }
            all[session.id] = session
        }
        return session
    }

    /// The session this id names, if it has not expired.
    public func session(_ id: String, now: Date = Date()) -> ConsoleSession? {
        sessions.withLock { all in
            guard let found = all[id] else { return nil }
            guard found.expiresAt > now else {
                all[id] = nil
                return nil
            }
            return found
        }
    }

    public func close(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
        _ = flashes.withLock { $0.removeValue(forKey: id) }
    }

    func flash(_ id: String, _ text: String, isError: Bool = false) {
        flashes.withLock { $0[id] = (text, isError) }
    }

    func takeFlash(_ id: String) -> (text: String, isError: Bool)? {
        flashes.withLock { $0.removeValue(forKey: id) }
    }

    /// Ends every session of a token (it was found revoked or expired).
    public func closeAll(tokenID: Int) {
        sessions.withLock { all in all = all.filter { $0.value.tokenID != tokenID } }
    }
}
