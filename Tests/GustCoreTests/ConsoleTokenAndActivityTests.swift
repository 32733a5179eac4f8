import Foundation
import GustCore
import GustTesting
import Testing

/// Console tokens (admin or scoped, only their hash kept) and the activity log, in a real store.
@Suite struct ConsoleTokenAndActivityTests {
    func store() throws -> Store {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        for app in ["cats", "dogs"] { _ = try store.createApp(try AppName(app)) }
        return store
    }

    @Test(.scratchDirectory) func aConsoleTokenIsAdminOrScopedAndOnlyItsHashIsStored() throws {
        let store = try store()
        let (admin, adminSecret) = try store.createConsoleToken(apps: nil, description: "ops", expiresAt: nil)
        let (scoped, scopedSecret) = try store.createConsoleToken(apps: [try AppName("cats")], description: "", expiresAt: nil)
        let (cats, dogs) = (try AppName("cats"), try AppName("dogs"))
        #expect(admin.isAdmin && admin.mayUse(dogs))
        #expect(!scoped.isAdmin && scoped.mayUse(cats) && !scoped.mayUse(dogs))
        #expect(try store.verifyConsoleToken(secret: scopedSecret)?.apps == [try AppName("cats")])
        #expect(try store.verifyConsoleToken(secret: adminSecret + "x") == nil)
        let hashes = try store.db.query("SELECT hash FROM console_tokens").compactMap { $0.string("hash") }
        #expect(!hashes.contains(adminSecret) && hashes.contains(Store.tokenHash(adminSecret)))
        #expect(try store.consoleToken(id: admin.id)?.lastUsedAt == nil)
        _ = try store.verifyConsoleToken(secret: adminSecret)
        #expect(try store.consoleToken(id: admin.id)?.lastUsedAt != nil)
        try store.revokeConsoleToken(id: admin.id)
        #expect(try store.verifyConsoleToken(secret: adminSecret) == nil)
        #expect(throws: GustError.self) { try store.revokeConsoleToken(id: admin.id) }
        #expect(throws: GustError.self) { try store.createConsoleToken(apps: [try AppName("nope")], description: "", expiresAt: nil) }
    }

    @Test(.scratchDirectory) func anExpiredConsoleTokenSignsNobodyIn() throws {
        let store = try store()
        let (_, secret) = try store.createConsoleToken(apps: nil, description: "", expiresAt: Date().addingTimeInterval(-1))
        #expect(try store.verifyConsoleToken(secret: secret) == nil)
    }

    @Test(.scratchDirectory) func theActivityLogIsNewestFirstPerAppOrAmongApps() throws {
        let store = try store()
        let (cats, dogs) = (try AppName("cats"), try AppName("dogs"))
        try store.recordActivity(app: cats, actor: "key alice", source: "push", action: "push", detail: "v1")
        try store.recordActivity(app: dogs, actor: "user root", source: "cli", action: "scale", detail: "max 3")
        try store.recordActivity(app: cats, actor: "console token 1", source: "console", action: "rollback", detail: "v2")
        #expect(try store.activity(app: cats).map(\.action) == ["rollback", "push"])
        #expect(try store.activity().map(\.action) == ["rollback", "scale", "push"])
        #expect(try store.activity(among: [dogs]).map(\.actor) == ["user root"])
        #expect(try store.activity(among: []).isEmpty)
    }

    @Test func theCLINamesTheSSHKeyOrTheLocalUser() {
        #expect(Store.cliActor(environment: ["GUST_SSH_KEY": "bob", "USER": "gust"]) == ("key bob", "ssh"))
        #expect(Store.cliActor(environment: ["USER": "root"]) == ("user root", "cli"))
    }
}
