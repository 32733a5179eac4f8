import Foundation
import GustCore
import GustTesting
import Testing

/// The `/etc` a sandboxed instance sees (one directory gustd prepares as it starts, bound as
/// `/etc`): exactly the allowed entries the host has, each as the host's (links into `/usr`
/// resolving, others with the content they point to), read-only, and nothing else of the host's
/// `/etc`; and, started with no shell inside, its user namespace's `max_user_namespaces` is 0.
/// By the same unprivileged gustd as the other `SandboxTests`.
extension SandboxTests {
    /// What of the host's `/etc` sandboxed code may read (`Sandbox.etc`), stated here on its own.
    static let allowedEtc: Set<String> = [
        "resolv.conf", "hosts", "nsswitch.conf", "host.conf", "gai.conf", "services", "protocols", "ssl", "ca-certificates",
        "ca-certificates.conf", "localtime", "timezone", "alternatives", "mime.types", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
        "passwd", "group",
    ]

    @Test(.scratchDirectory) func aSandboxedInstanceSeesOnlyTheAllowedEntriesOfEtc() throws {
        guard let setup = try Self.prepareUser() else { return }
        let root = ScratchDirectory.current
        let (home, installed) = try Self.prepareHome(setup, in: root, apps: ["peek"])
        let gustd = try GustdProcess(home: home, user: Self.user, executable: installed.gustd)
        defer { gustd.stop() }
        #expect(gustd.logText.contains("sandbox: bubblewrap, each app as its own uid from \(Self.rangeStart)"), "\(gustd.logText)")

        let peek = try setup.workspace(root, "peek", files: [
            "__init__.py": """
                import hashlib, os, gust

                def digest(path):
                    try:
                        with open(path, 'rb') as f:
                            return hashlib.sha256(f.read()).hexdigest()
                    except OSError as error:
                        return 'unreadable: ' + type(error).__name__

                @gust.op('etc')
                def etc():
                    try:
                        with open('/etc/gust-was-here', 'w') as f:
                            f.write('x')
                        write = 'written'
                    except OSError as error:
                        write = 'refused: ' + type(error).__name__
                    return {
                        'entries': sorted(os.listdir('/etc')),
                        'certs': sorted(os.listdir('/etc/ssl/certs')) if os.path.isdir('/etc/ssl/certs') else None,
                        'files': {name: digest('/etc/' + name) for name in ['resolv.conf', 'hosts', 'passwd', 'localtime', 'ssl/certs/ca-certificates.crt']},
                        'localtime_link': os.readlink('/etc/localtime') if os.path.islink('/etc/localtime') else None,
                        'write': write,
                        'max_user_namespaces': open('/proc/sys/user/max_user_namespaces').read().strip(),
                    }
                """,
        ])
        let pushed = try setup.push(peek, to: home.repository(try AppName("peek")).path)
        #expect(pushed.status == 0, "\(pushed.output)")
        let answer = try HTTPClient.request(port: gustd.port, "POST", "/apps/peek/_/functions/etc")
        #expect(answer.status == 200, "\(answer.text)")
        let seen = try #require(answer.json, "\(answer.text)")

        // Exactly the allowed entries the host has; nothing else (shadow, subuid, ssh, gustd's home).
        let host = Set((try FileManager.default.contentsOfDirectory(atPath: "/etc")).filter { name in
            Self.allowedEtc.contains(name) && FileManager.default.fileExists(atPath: "/etc/" + name)  // follows links, as bwrap's binds did
        })
        let entries = Set(seen["entries"] as? [String] ?? [])
        #expect(entries == host, "inside: \(entries.sorted()), allowed on this host: \(host.sorted())")
        for secret in ["shadow", "gshadow", "subuid", "subgid", "ssh", "sudoers", "machine-id"] {
            #expect(!entries.contains(secret), "/etc/\(secret) is visible inside")
        }
        // The same files as the host's, links included (/etc/localtime into /usr resolves inside).
        let files = try #require(seen["files"] as? [String: String], "\(seen)")
        for (name, digest) in files {
            let hostFile = "/etc/" + name
            guard let contents = FileManager.default.contents(atPath: hostFile) else { continue }
            #expect(digest == Self.sha256(contents), "/etc/\(name) differs inside: \(digest)")
        }
        if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/etc/localtime") {
            #expect(seen["localtime_link"] as? String == link, "\(seen)")
        }
        if let certs = try? FileManager.default.contentsOfDirectory(atPath: "/etc/ssl/certs") {
            #expect(Set(seen["certs"] as? [String] ?? []) == Set(certs), "\(seen)")
        }
        #expect((seen["write"] as? String)?.hasPrefix("refused") == true, "\(seen)")
        // With no shell inside, gustd itself set the limit in the sandbox's user namespace before it went on.
        #expect(seen["max_user_namespaces"] as? String == "0", "nested user namespaces are refused: \(seen)")
    }

    static func sha256(_ data: Data) -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gust-etc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        guard (try? data.write(to: file)) != nil, let result = try? Command.run("/usr/bin/sha256sum", [file.path]) else { return "" }
        return String(result.stdout.prefix { $0 != " " })
    }
}
