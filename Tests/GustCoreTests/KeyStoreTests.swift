import Foundation
import GustCore
import GustTesting
import Testing

/// The keys table and the authorized_keys file built from it.
@Suite(.timeLimit(.minutes(2)))
struct KeyStoreTests {
    func key(_ name: String) throws -> SSHPublicKey {
        let file = ScratchDirectory.current.appendingPathComponent(name)
        try Command.run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file.path])
        return try SSHPublicKey(parsing: try String(contentsOf: URL(fileURLWithPath: file.path + ".pub"), encoding: .utf8))
    }

    @Test(.scratchDirectory) func oneKeyOneNameAndScopesFollowApps() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path))
        let cats = try AppName("cats"), dogs = try AppName("dogs")
        _ = try store.createApp(cats)
        _ = try store.createApp(dogs)
        let alice = try key("alice"), bob = try key("bob")

        guard case .added(let added) = try store.addKey(try KeyName("alice"), alice, scope: .admin) else { Issue.record("not added"); return }
        #expect(added.isAdmin && added.mayUse(dogs) && added.fingerprint == alice.fingerprint)
        #expect(try store.addKey(try KeyName("alice"), alice, scope: .admin) == .unchanged(added))
        let other = try #require(throws: GustError.self) { try store.addKey(try KeyName("alice2"), alice, scope: .admin) }
        #expect(other.message.contains("already added as 'alice'"))
        let taken = try #require(throws: GustError.self) { try store.addKey(try KeyName("alice"), bob, scope: .admin) }
        #expect(taken.message.contains("already named 'alice'"))
        #expect(throws: GustError.self) { try store.addKey(try KeyName("bob"), bob, scope: .apps([try AppName("fish")])) }
        #expect(try store.sshKey(try KeyName("bob")) == nil)

        _ = try store.addKey(try KeyName("bob"), bob, scope: .apps([cats]))
        let name = try KeyName("bob")
        #expect(try store.requireKey(name).mayUse(cats) && !store.requireKey(name).mayUse(dogs))
        #expect(try store.grant(name, apps: [dogs, cats]) == [dogs])
        #expect(try store.requireKey(name).apps == [cats, dogs])
        #expect(try store.revoke(name, apps: [cats]) == [cats])
        #expect(try store.requireKey(name).scope == "dogs")
        #expect(throws: GustError.self) { try store.grant(try KeyName("alice"), apps: [cats]) }

        // Destroying an app takes its grants with it.
        try store.deleteApp(dogs)
        #expect(try store.requireKey(name).apps.isEmpty)
        try store.removeKey(name)
        #expect(try store.sshKeys().map(\.name.rawValue) == ["alice"])
        #expect(throws: GustError.self) { try store.removeKey(name) }
    }

    @Test func theBlockBetweenTheMarkersIsReplacedAndEverythingElseKept() throws {
        let begin = AuthorizedKeys.beginMarker, end = AuthorizedKeys.endMarker
        #expect(try AuthorizedKeys.merge("", block: ["a"]) == "\(begin)\na\n\(end)\n")
        #expect(try AuthorizedKeys.merge("mine\n", block: ["a"]) == "mine\n\(begin)\na\n\(end)\n")
        #expect(try AuthorizedKeys.merge("mine", block: []) == "mine\n\(begin)\n\(end)\n")
        let existing = "top\n\n\(begin)\nold1\nold2\n\(end)\n# bottom\nlast"
        #expect(try AuthorizedKeys.merge(existing, block: ["new"]) == "top\n\n\(begin)\nnew\n\(end)\n# bottom\nlast\n")
        #expect(throws: GustError.self) { try AuthorizedKeys.merge("x\n\(begin)\nold\n", block: []) }
        #expect(throws: GustError.self) { try AuthorizedKeys.merge("\(begin)\n\(end)\n\(begin)\n\(end)\n", block: []) }
    }

    @Test(.scratchDirectory) func aLineForcesGustsCommandAndQuotesOddPaths() throws {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.appendingPathComponent("my home").path))
        _ = try store.addKey(try KeyName("alice"), try key("alice"), scope: .admin)
        let entry = try store.requireKey(try KeyName("alice"))
        let line = AuthorizedKeys.line(for: entry, gust: URL(fileURLWithPath: "/opt/gust/bin/gust"), home: store.home)
        #expect(entry.fingerprint.hasPrefix("SHA256:"))
        #expect(line == "command=\"/opt/gust/bin/gust --home '\(store.home.path)' ssh-command alice --fingerprint \(entry.fingerprint)\",restrict ssh-ed25519 \(entry.key)")
    }
}
