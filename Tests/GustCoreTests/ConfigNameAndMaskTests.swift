import Foundation
import GustCore
import GustTesting
import Testing

/// Config var names a build shell cannot take, and secrets too short to mask.
@Suite struct ConfigNameAndMaskTests {
    func store() throws -> (Store, AppName) {
        let store = try Store(home: GustHome(path: ScratchDirectory.current.path))
        let app = try AppName("cats")
        _ = try store.createApp(app)
        return (store, app)
    }

    /// bash refuses to assign these ("readonly variable"), so every build with one of them set failed.
    @Test(.scratchDirectory, arguments: ["UID", "EUID", "PPID", "SHELLOPTS", "BASHOPTS", "BASH_VERSINFO", "IFS", "GUST_SOCKET"])
    func reservedNamesAreRefusedWithTheirReason(name: String) throws {
        let (store, app) = try store()
        let error = #expect(throws: GustError.self) { try store.setConfig(app, [name: "1"], secret: false) }
        #expect(error?.message.contains("'\(name)' is reserved") == true, "\(error?.message ?? "")")
        #expect(try store.config(app).isEmpty)
    }

    @Test(.scratchDirectory) func ordinaryNamesStillWork() throws {
        let (store, app) = try store()
        try store.setConfig(app, ["USER_ID": "1", "TZ": "Europe/Paris", "_private": "x", "GUST_BEFORE_HOOK_TIMEOUT": "2s"], secret: false)
        #expect(try store.config(app) == ["USER_ID": "1", "TZ": "Europe/Paris", "_private": "x", "GUST_BEFORE_HOOK_TIMEOUT": "2s"])
    }

    /// Masking a one-letter secret in a log line gives its value away (`th•••••• s••••••cr••••••t`).
    @Test(.scratchDirectory) func aSecretTooShortToMaskIsRefused() throws {
        let (store, app) = try store()
        let error = #expect(throws: GustError.self) { try store.setConfig(app, ["KEY": "e"], secret: true) }
        #expect(error?.message.contains("at least \(ConfigVar.minimumSecretLength) characters") == true, "\(error?.message ?? "")")
        #expect(try store.config(app).isEmpty)
        try store.setConfig(app, ["KEY": "e"], secret: false)  // a plain value may be short
    }

    @Test func maskingLeavesTextAloneForValuesTooShortToHide() {
        #expect("these secrets".maskingSecrets(["e"]) == "these secrets")
        #expect("key=s3cr3t-7f1c9e!".maskingSecrets(["s3cr3t-7f1c9e"]) == "key=\(ConfigVar.mask)!")
    }
}
