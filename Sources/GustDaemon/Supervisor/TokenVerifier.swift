import Foundation
import GustCore
import NIOCore
import Synchronization

/// Checks the tokens of private apps' calls. What the store verified is answered from memory
/// while the store is unwritten (`StoreWrites`' generation), so that a private app's calls do not
/// each queue on the store's one connection: the check was about 0.12 ms of a 0.26 ms call
/// (docs/benchmarks.md, "A private app's calls").
///
/// Revocation still takes effect at once: a `gust tokens revoke` writes the store, which changes
/// the generation before the command returns, and an answer from memory needs the generation it
/// was verified at, taken *before* the store was asked. Beside that, an answer from memory lasts
/// until the token expires and at most `Store.lastUseResolution`, so the store sees each token's
/// use every minute and its last use stays exact to the minute.
///
/// A wrong token is refused from memory as well: once a token of an app was refused, the hashes
/// of all the app's unrevoked tokens are read, at the generation, and a token whose hash is not
/// among them is refused without the store until the store is written. Anyone may send tokens,
/// and each had cost a store read on its one connection, in line with every private app's calls.
final class TokenVerifier: Sendable {
    private struct Key: Hashable {
        let app: AppName
        let hash: String
    }

    private struct Verified {
        let generation: UInt64
        let at: Date
        let until: Date
    }

    private let store: StoreAccess
    private let generation: @Sendable () -> UInt64?
    private let verified = Mutex<[Key: Verified]>([:])
    /// Each app's unrevoked token hashes as the store had them at a generation.
    private let hashes = Mutex<[AppName: (generation: UInt64, hashes: Set<String>)]>([:])
    /// Past this many remembered tokens, all are forgotten (they are verified again as they come).
    private let capacity: Int

    /// `generation`: `StoreWrites.generation` of the store's home (a fake in tests).
    init(store: StoreAccess, generation: @escaping @Sendable () -> UInt64?, capacity: Int = 4096) {
        self.store = store
        self.generation = generation
        self.capacity = capacity
    }

    /// How many tokens are remembered now.
    var remembered: Int { verified.withLock { $0.count } }

    /// Whether `secret` is a valid token of `app`: from memory, or from the store on its thread.
    func verify(_ app: AppName, _ secret: String, now: Date = Date()) async -> Bool {
        switch lookup(app, secret, now: now) {
        case .remembered: true
        case .refused: false
        case .ask(let key, let generation): (try? await store.run(check(key, generation: generation, now: now))) ?? false
        }
    }

    /// The same for the gateway's lane, on the loop of the call's connection, which must not wait:
    /// never an error, a store that cannot answer refuses the token.
    func verify(_ app: AppName, _ secret: String, on loop: any EventLoop, now: Date = Date()) -> EventLoopFuture<Bool> {
        switch lookup(app, secret, now: now) {
        case .remembered: loop.makeSucceededFuture(true)
        case .refused: loop.makeSucceededFuture(false)
        case .ask(let key, let generation): store.future(on: loop, check(key, generation: generation, now: now)).recover { _ in false }
        }
    }

    private enum Lookup {
        case remembered
        /// No unrevoked token of the app has that hash, as the store was at this generation.
        case refused
        /// The store is asked; a yes is remembered at `generation`, read before the store was asked
        /// (nil: none is known, nothing is remembered).
        case ask(Key, generation: UInt64?)
    }

    private func lookup(_ app: AppName, _ secret: String, now: Date) -> Lookup {
        let key = Key(app: app, hash: Store.tokenHash(secret))
        let current = generation()
        let known = verified.withLock { $0[key] }
        if let known, let current, known.generation == current, known.at <= now, now < known.until {
            return .remembered
        }
        if let current, let app = hashes.withLock({ $0[app] }), app.generation == current, !app.hashes.contains(key.hash) {
            return .refused
        }
        return .ask(key, generation: current)
    }

    private func check(_ key: Key, generation: UInt64?, now: Date) -> @Sendable (Store) throws -> Bool {
        { [self] store in
            guard let token = try store.verifiedToken(key.app, hash: key.hash, now: now) else {
                // An app with very many tokens is asked each time rather than held in memory.
                if let generation, case let unrevoked = try store.unrevokedTokenHashes(key.app), unrevoked.count <= 1000 {
                    hashes.withLock { $0.remember((generation, unrevoked), for: key.app, atMost: capacity) }
                }
                return false
            }
            if let generation {
                let until = min(now + Store.lastUseResolution, token.expiresAt ?? .distantFuture)
                verified.withLock { $0.remember(Verified(generation: generation, at: now, until: until), for: key, atMost: capacity) }
            }
            return true
        }
    }
}

extension Dictionary {
    /// Sets `value` for `key`, forgetting every other entry first when a new key would pass
    /// `capacity`: a memory of answers the store gives again, not a record, so it is bounded
    /// the cheapest way.
    fileprivate mutating func remember(_ value: Value, for key: Key, atMost capacity: Int) {
        if count >= capacity, self[key] == nil { removeAll() }
        self[key] = value
    }
}
