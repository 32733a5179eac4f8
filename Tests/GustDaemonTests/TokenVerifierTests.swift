import Foundation
import GustCore
@testable import GustDaemon
import GustTesting
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A private app's token checks: what the store verified is answered from memory while the
/// store is unwritten, and never past a write, the token's expiry or a minute.
@Suite struct TokenVerifierTests {
    /// A generation that moves only when the test says so (the real one is `StoreWrites`').
    final class Generation: Sendable {
        let value = Mutex<UInt64?>(1)
        func next() { value.withLock { $0 = $0.map { $0 + 1 } } }
        func read() -> UInt64? { value.withLock { $0 } }
    }

    struct Fixture {
        let store: Store  // a connection of the test's own, as the CLI has
        let verifier: TokenVerifier
        let generation = Generation()
        let app: AppName
        let secret: String
        let tokenID: Int

        init(expiresAt: Date? = nil, capacity: Int = 4096) throws {
            let home = GustHome(path: ScratchDirectory.current.path)
            store = try Store(home: home)
            app = try AppName("cats")
            _ = try store.createApp(app)
            let (token, secret) = try store.createToken(app, description: "", expiresAt: expiresAt)
            (self.secret, tokenID) = (secret, token.id)
            let generation = self.generation
            verifier = TokenVerifier(store: try StoreAccess(home: home), generation: { generation.read() }, capacity: capacity)
        }
    }

    @Test(.scratchDirectory) func aVerifiedTokenIsAnsweredFromMemoryUntilTheStoreIsWritten() async throws {
        let fixture = try Fixture()
        let now = Date()
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now))
        // Revoked behind the fake generation's back: only an answer from memory can still say yes.
        try fixture.store.revokeToken(fixture.app, id: fixture.tokenID)
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now + 1), "answered without the store")
        fixture.generation.next()
        #expect(await !fixture.verifier.verify(fixture.app, fixture.secret, now: now + 2), "a write: the store is read again")
        #expect(await !fixture.verifier.verify(fixture.app, fixture.secret, now: now + 3))
    }

    @Test(.scratchDirectory) func onlyTheTokenOfTheAppItWasVerifiedForIsRemembered() async throws {
        let fixture = try Fixture()
        let dogs = try AppName("dogs")
        _ = try fixture.store.createApp(dogs)
        let now = Date()
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now))
        #expect(await !fixture.verifier.verify(dogs, fixture.secret, now: now), "cats' token is not dogs'")
        #expect(await !fixture.verifier.verify(fixture.app, fixture.secret + "x", now: now))
    }

    @Test(.scratchDirectory) func aRememberedTokenLastsNoLongerThanItsExpiry() async throws {
        let now = Date()
        let fixture = try Fixture(expiresAt: now + 30)
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now))
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now + 29))
        #expect(await !fixture.verifier.verify(fixture.app, fixture.secret, now: now + 31), "expired, with nothing written")
    }

    /// The store sees each token's use at least once a minute, so its last use stays exact to the
    /// minute (`Store.lastUseResolution`).
    @Test(.scratchDirectory) func aRememberedTokenIsCheckedInTheStoreAgainAfterAMinute() async throws {
        let fixture = try Fixture()
        let now = Date()
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now))
        try fixture.store.revokeToken(fixture.app, id: fixture.tokenID)
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now + 59))
        #expect(await !fixture.verifier.verify(fixture.app, fixture.secret, now: now + Store.lastUseResolution + 1))
        // A clock set back is not trusted either.
        #expect(await !fixture.verifier.verify(fixture.app, fixture.secret, now: now - 1))
    }

    @Test(.scratchDirectory) func withoutAGenerationNothingIsRemembered() async throws {
        let fixture = try Fixture()
        fixture.generation.value.withLock { $0 = nil }
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret))
        try fixture.store.revokeToken(fixture.app, id: fixture.tokenID)
        #expect(await !fixture.verifier.verify(fixture.app, fixture.secret))
    }

    @Test(.scratchDirectory) func theLoopsCheckSharesWhatTheStoreVerified() async throws {
        let fixture = try Fixture()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let now = Date()
        #expect(try await fixture.verifier.verify(fixture.app, fixture.secret, on: loop, now: now).get())
        try fixture.store.revokeToken(fixture.app, id: fixture.tokenID)
        let answered = fixture.verifier.verify(fixture.app, fixture.secret, on: loop, now: now + 1)
        #expect(try await answered.get(), "from memory")
        fixture.generation.next()
        #expect(try await !fixture.verifier.verify(fixture.app, fixture.secret, on: loop, now: now + 2).get())
    }

    /// With a real `StoreWrites`: a revocation by another process (the CLI) is refused at the very
    /// next check, though the token was verified a moment before.
    @Test(.scratchDirectory) func aTokenRevokedByAnotherConnectionIsRefusedAtTheNextCheck() async throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        let access = try StoreAccess(home: home)
        let cli = try Store(home: home)
        let app = try AppName("cats")
        _ = try cli.createApp(app)
        let (token, secret) = try cli.createToken(app, description: "", expiresAt: nil)
        let writes = StoreWrites(home: home)
        let verifier = TokenVerifier(store: access, generation: writes.generation)
        #expect(await verifier.verify(app, secret))
        #expect(await verifier.verify(app, secret))
        try cli.revokeToken(app, id: token.id)
        #expect(await !verifier.verify(app, secret))
    }

    @Test(.scratchDirectory) func rememberingIsBounded() async throws {
        let fixture = try Fixture(capacity: 2)
        var secrets = [fixture.secret]
        for _ in 0..<2 { secrets.append(try fixture.store.createToken(fixture.app, description: "", expiresAt: nil).secret) }
        let now = Date()
        for secret in secrets { #expect(await fixture.verifier.verify(fixture.app, secret, now: now)) }
        #expect(fixture.verifier.remembered <= 2)
    }
}

extension TokenVerifierTests {
    /// A wrong token is refused from memory until the store is written: anyone may send tokens,
    /// and each wrong one went to the store's one connection. Shown with a token made behind the
    /// fake generation's back, which only an answer from memory can still refuse.
    @Test(.scratchDirectory) func aWrongTokenIsRefusedFromMemoryUntilTheStoreIsWritten() async throws {
        let fixture = try Fixture()
        let now = Date()
        #expect(await !fixture.verifier.verify(fixture.app, "gust_wrong", now: now))
        let (_, made) = try fixture.store.createToken(fixture.app, description: "after", expiresAt: nil)
        #expect(await !fixture.verifier.verify(fixture.app, made, now: now + 1), "refused without the store")
        #expect(await fixture.verifier.verify(fixture.app, fixture.secret, now: now + 1), "a token it had is asked for")
        fixture.generation.next()
        #expect(await fixture.verifier.verify(fixture.app, made, now: now + 2), "a write: the store is read again")
        // Another app's refusals are its own.
        let dogs = try AppName("dogs")
        _ = try fixture.store.createApp(dogs)
        #expect(await !fixture.verifier.verify(dogs, "gust_wrong", now: now + 3))
        #expect(await fixture.verifier.verify(fixture.app, made, now: now + 3))
    }
}
