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

    /// The dynamic loader and the C library act on these in every program that starts, before its
    /// own code: set for an app, they would reach the sandbox's tools that start it with more rights
    /// than the app has (bwrap as gustd's uid, setpriv as root inside), not only the app.
    @Test(.scratchDirectory, arguments: ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "MALLOC_TRACE"])
    func loaderVariablesAreRefused(name: String) throws {
        let (store, app) = try store()
        let error = #expect(throws: GustError.self) { try store.setConfig(app, [name: "/app/evil.so"], secret: false) }
        #expect(error?.message.contains("'\(name)' is reserved: the dynamic loader") == true, "\(error?.message ?? "")")
        #expect(try store.config(app).isEmpty)
    }

    @Test(.scratchDirectory) func ordinaryNamesStillWork() throws {
        let (store, app) = try store()
        try store.setConfig(app, ["USER_ID": "1", "TZ": "Europe/Paris", "_private": "x", "GUST_BEFORE_HOOK_TIMEOUT": "2s"], secret: false)
        #expect(try store.config(app) == ["USER_ID": "1", "TZ": "Europe/Paris", "_private": "x", "GUST_BEFORE_HOOK_TIMEOUT": "2s"])
    }

    @Test func hookTimeoutsAreReadInTheirUnits() throws {
        #expect(try HookTimeout.parse("10s", name: "GUST_BEFORE_HOOK_TIMEOUT") == .seconds(10))
        #expect(try HookTimeout.parse(" 500ms ", name: "GUST_BEFORE_HOOK_TIMEOUT") == .milliseconds(500))
        #expect(try HookTimeout.parse("1m", name: "GUST_AFTER_HOOK_TIMEOUT") == .seconds(60))
        #expect(try HookTimeout.parse("2.5", name: "GUST_AFTER_HOOK_TIMEOUT") == .milliseconds(2500))
        #expect(try HookTimeout.parse("5m", name: "GUST_AFTER_HOOK_TIMEOUT") == HookTimeout.longest)
    }

    /// gustd turned these into a Duration and trapped (`inf`, `1e400`), or overflowed later
    /// counting nanoseconds (`1e10`): one `gust config set` took gustd down at the app's next record write.
    @Test(arguments: ["inf", "infs", "1e400", "nan", "1e10", "301s", "6m", "0", "0ms", "-1s", "ten", "", "s", "10h", "1e3s"])
    func hookTimeoutsOutOfRangeAreRefused(_ text: String) {
        let error = #expect(throws: GustError.self) { try HookTimeout.parse(text, name: "GUST_BEFORE_HOOK_TIMEOUT") }
        #expect(error?.message.contains("GUST_BEFORE_HOOK_TIMEOUT") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("from 1ms to 5m") == true, "\(error?.message ?? "")")
    }

    @Test(.scratchDirectory) func aHookTimeoutGustdCannotReadIsRefusedWhenSet() throws {
        let (store, app) = try store()
        for name in ["GUST_BEFORE_HOOK_TIMEOUT", "GUST_AFTER_HOOK_TIMEOUT"] {
            let error = #expect(throws: GustError.self) { try store.setConfig(app, ["A": "1", name: "inf"], secret: false) }
            #expect(error?.message.contains("\(name) is 'inf'") == true, "\(error?.message ?? "")")
        }
        #expect(try store.config(app).isEmpty, "a refused pair changes nothing")
        try store.setConfig(app, ["GUST_AFTER_HOOK_TIMEOUT": "250ms"], secret: false)
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
