public import Foundation
import GustCore
import Synchronization

/// What the console keeps of its sessions in memory: only the line each is to
/// see on its next page ("v4 is live"), after a redirect. The sessions
/// themselves are in the store (`Store.openConsoleSession`), hashed, so that a
/// gustd restart signs nobody out; a flash lost with a restart is no loss.
public final class ConsoleSessions: Sendable {
    /// How long a session lasts after sign-in.
    public static let lifetime: TimeInterval = 12 * 3600
    /// Flashes at most: sessions that never come back cannot grow memory without bound.
    static let flashCapacity = 10_000

    private let flashes = Mutex<[String: (text: String, isError: Bool)]>([:])

    public init() {}

    func flash(_ id: String, _ text: String, isError: Bool = false) {
        flashes.withLock { all in
            if all.count >= Self.flashCapacity { all.removeAll() }
            all[id] = (text, isError)
        }
    }

    func takeFlash(_ id: String) -> (text: String, isError: Bool)? {
        flashes.withLock { $0.removeValue(forKey: id) }
    }

    func forget(_ id: String) {
        _ = flashes.withLock { $0.removeValue(forKey: id) }
    }
}
