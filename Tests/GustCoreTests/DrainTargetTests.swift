import Foundation
import GustCore
import GustTesting
import Testing

@Suite struct DrainTargetTests {
    @Test func httpAndSyslogURLsParse() throws {
        let https = try DrainTarget("https://logs.example.com/ingest?token=abc")
        #expect(https.kind == .https && https.host == "logs.example.com" && https.port == 443 && https.path == "/ingest?token=abc")
        #expect(https.usesTLS)
        let http = try DrainTarget("http://user:s3cret@10.1.2.3:8080")
        #expect(http.port == 8080 && http.path == "/" && http.userInfo == "user:s3cret")
        #expect(http.description == "http://user:****@10.1.2.3:8080", "the password is not shown")
        let syslog = try DrainTarget("syslog://LOGS.example.com:6514")
        #expect(syslog.kind == .syslog && syslog.host == "logs.example.com" && syslog.port == 6514)
        #expect(try DrainTarget("syslog+tls://[2001:db8::1]:6514").host == "2001:db8::1")
    }

    @Test(arguments: [
        "ftp://example.com/", "example.com", "https://", "https://exa mple.com/", "https://example.com/\n", "syslog://example.com",
        "syslog://example.com:514/path", "https://example.com:0/", "https://example.com:70000/", "https://ex_ample.com/",
        "https://example.com/#frag", "file:///etc/passwd", "https://exämple.com/",
    ])
    func malformedOrUnsupportedURLsAreRefused(_ text: String) {
        #expect(throws: GustError.self) { try DrainTarget(text) }
    }

    @Test(.scratchDirectory) func anAppHasAFewDrainsEachURLOnceAndTheyGoWithTheApp() throws {
        let home = GustHome(path: ScratchDirectory.current.path)
        let store = try Store(home: home)
        let cats = try AppName("cats")
        _ = try store.createApp(cats)
        let first = try store.addDrain(cats, try DrainTarget("https://a.example.com/"), allowPrivate: false)
        #expect(throws: GustError.self) { try store.addDrain(cats, try DrainTarget("https://a.example.com/"), allowPrivate: false) }
        for index in 2...Store.maximumDrains { _ = try store.addDrain(cats, try DrainTarget("https://a.example.com/\(index)"), allowPrivate: false) }
        #expect(throws: GustError.self) { try store.addDrain(cats, try DrainTarget("https://b.example.com/"), allowPrivate: false) }
        #expect(try store.drains(cats).count == Store.maximumDrains)
        try store.removeDrain(cats, first.id)
        try store.removeDrain(cats, "https://a.example.com/2")
        #expect(try store.drains(cats).count == Store.maximumDrains - 2)
        #expect(throws: GustError.self) { try store.removeDrain(cats, "nope") }
        try store.deleteApp(cats)
        #expect(try store.drains().isEmpty)
    }
}
