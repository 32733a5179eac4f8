import GustCore
@testable import GustDaemon
import Testing

/// The two secrets each instance start makes (its records-channel token and its internal
/// secret): 64 lowercase hex digits each (what the runtimes take), a new one every time.
@Suite struct InstanceSecretsTests {
    static func isSecret(_ text: String) -> Bool {
        text.utf8.count == 64 && text.allSatisfy { "0123456789abcdef".contains($0) }
    }

    @Test func theInternalSecretIs32BytesOfHexAndNewEachTime() {
        let first = InternalSecret.make(), second = InternalSecret.make()
        #expect(Self.isSecret(first), "\(first)")
        #expect(Self.isSecret(second), "\(second)")
        #expect(first != second)
    }

    @Test func aRecordsTokenIs32BytesOfHexNewEachTimeAndNamesItsApp() throws {
        let tokens = RecordsChannelTokens()
        let cats = try AppName("cats")
        let first = tokens.issue(for: cats), second = tokens.issue(for: cats)
        #expect(Self.isSecret(first), "\(first)")
        #expect(first != second)
        #expect(tokens.lookup(first, peer: nil)?.app == cats)
        tokens.revoke(first)
        #expect(tokens.lookup(first, peer: nil) == nil)
        #expect(tokens.lookup(second, peer: nil)?.app == cats)
    }

    /// A lookup compares what the table holds with what a caller sent, and a string comparison
    /// stops at the first byte that differs: the table holds each token's SHA-256, never the
    /// token, so how long a wrong one takes says nothing about a right one (as app tokens are kept).
    @Test func theTableHoldsEachRecordsTokensHashNotTheToken() throws {
        let tokens = RecordsChannelTokens()
        let token = tokens.issue(for: try AppName("cats"))
        #expect(tokens.keys == [Store.tokenHash(token)])
        #expect(tokens.lookup(Store.tokenHash(token), peer: nil) == nil, "the hash itself is no token")
    }

    /// Under the sandbox with app uids every app's instances reach the same records socket: a
    /// secret bound to its app's uid is refused from any other peer (a secret an app leaked works
    /// nowhere but in that app's own processes); one issued where apps run as gustd's uid is not bound.
    @Test func aRecordsTokenBoundToItsAppsUidIsRefusedFromAnotherPeer() throws {
        let tokens = RecordsChannelTokens()
        let cats = try AppName("cats")
        let bound = tokens.issue(for: cats, uid: 420_001), unbound = tokens.issue(for: cats)
        #expect(tokens.lookup(bound, peer: 420_001)?.app == cats)
        #expect(tokens.lookup(bound, peer: 420_002) == nil, "another app's uid")
        #expect(tokens.lookup(bound, peer: nil) == nil, "a peer whose uid is unknown")
        #expect(tokens.lookup(unbound, peer: 420_002)?.app == cats)
    }
}
