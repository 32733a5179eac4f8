#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CGustSystem
import Foundation
import GustCore

/// `gust ssh-command NAME`: what sshd runs for every connection with a Gust
/// key, whatever the client asked for (the `command=` of its line in
/// authorized_keys). The request arrives in `SSH_ORIGINAL_COMMAND` and never
/// reaches a shell: it is split into words here, checked against the key's
/// scope, and then either becomes `git-receive-pack`/`git-upload-pack` on the
/// app's repository (by exec, so the hook's output streams to the client) or
/// one of Gust's own commands, run in this process.
struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh-command",
        abstract: "The forced command sshd runs for a Gust key (see docs/ssh.md); not for people.",
        shouldDisplay: false
    )

    @OptionGroup var home: HomeOptions
    @Argument(help: "The key's name, as `gust keys add` wrote it into authorized_keys.") var key: String
    @Option(help: "The key's fingerprint, as `gust keys add` wrote it: the connection acts for that very key, never for another given its name later.")
    var fingerprint: String?

    func run() async throws {
        let raw = ProcessInfo.processInfo.environment["SSH_ORIGINAL_COMMAND"] ?? ""
        let store = try home.openStore()
        let log = SSHLog(home: store.home, key: key, command: raw)
        let request: SSHRequest
        let entry: SSHKey
        do {
            guard let name = try? KeyName(key), let found = try store.sshKey(name), fingerprint.map({ $0 == found.fingerprint }) ?? true else {
                throw SSHRefusal("This key is not registered with Gust (any more). Ask an admin to add it: gust keys add NAME FILE")
            }
            if fingerprint == nil {
                // A line an earlier Gust wrote, by name alone: written again with the fingerprints, for the
                // connections that log in from now on.
                try? AuthorizedKeys.update(store, gust: try Installation.current().executable("gust")) {}
            }
            entry = found
            // Who acts, for the activity log of what this connection does (inherited by git's hooks too).
            setenv("GUST_SSH_KEY", found.name.rawValue, 1)
            request = try SSHRequest.parse(try SSHCommandLine.words(raw))
        } catch let refusal as SSHRefusal {
            throw refuse(refusal, log: log)
        }

        switch request {
        case .help:
            log.write("accepted")
            print(SSHHelp.text(for: entry))
        case .git(let service, let app):
            let repository = try prepareGit(service, app: app, key: entry, store: store, log: log)
            if service == .receivePack, let disk = try store.effectiveLimits(app).disk {
                Self.boundPackStream(to: disk)
            }
            log.write("accepted")
            try Self.exec(service.rawValue, repository.path)
        case .gust(let words):
            var command: any ParsableCommand
            do {
                command = try GustCommand.parseAsRoot(words + ["--home", store.home.path])
            } catch {
                // Not run: a usage error or a `--help`, reported the way `gust` itself does.
                log.write("refused", reason: "does not parse")
                GustCommand.exit(withError: error)
            }
            do { try SSHAccess.check(command, key: entry) } catch { throw refuse(error, log: log) }
            if !entry.isAdmin, var list = command as? AppsCommand.List {
                list.only = Set(entry.apps)
                command = list
            }
            if !entry.isAdmin, var domains = command as? DomainsCommand.List {
                domains.only = Set(entry.apps)
                command = domains
            }
            // A scoped key's limits and scale stay under the ceilings an admin set.
            if !entry.isAdmin, var limits = command as? LimitsCommand {
                limits.underCeilings = true
                command = limits
            }
            if !entry.isAdmin, var scale = command as? ScaleCommand {
                scale.underCeilings = true
                command = scale
            }
            // A followed log stream ends once this key may no longer read it (removed, revoked, rotated).
            if var logs = command as? LogsCommand {
                (logs.readForKey, logs.readForFingerprint) = (entry.name.rawValue, entry.fingerprint)
                command = logs
            }
            log.write("accepted")
            await GustCommand.run(command)
        }
    }

    /// Checks that the key may use the app's repository, creating the app on
    /// an admin's first push, and returns the repository's path.
    private func prepareGit(_ service: SSHRequest.GitService, app: AppName, key: SSHKey, store: Store, log: SSHLog) throws -> URL {
        if !key.isAdmin, service == .receivePack, try store.app(app) == nil {
            throw refuse(SSHRefusal(
                "There is no app '\(app)', and key '\(key.name)' may not create apps: only admin keys can. An admin can run: gust apps create \(app) && gust keys grant \(key.name) \(app)"
            ), log: log)
        }
        guard key.mayUse(app) else {
            let verb = service == .receivePack ? "push to" : "fetch"
            throw refuse(SSHRefusal(
                "Key '\(key.name)' may not \(verb) '\(app)'. An admin can allow it: gust keys grant \(key.name) \(app)"
            ), log: log)
        }
        if try store.app(app) == nil {
            guard service == .receivePack else {
                throw refuse(SSHRefusal("There is no app '\(app)' to fetch. Push to it first."), log: log)
            }
            // Only admins reach this line: a scoped key's apps exist (grants need them).
            do {
                try AppAdmin.create(app, store: store, installation: try Installation.current())
                FileHandle.standardError.write(Data("-----> Created app \(app)\n".utf8))
            } catch let error as GustError where error.code == 409 && (try? store.app(app)) != nil {
                // Another push created it a moment ago: push to that one.
            }
        }
        return store.home.repository(app)
    }

    /// Logs the refusal and prints its one line; the returned error exits 1 quietly.
    private func refuse(_ refusal: SSHRefusal, log: SSHLog) -> ExitCode {
        log.write("refused", reason: refusal.message)
        FileHandle.standardError.write(Data("gust: \(refusal.message)\n".utf8))
        return ExitCode(1)
    }

    /// Replaces this process with git, so its protocol and the hook's output go
    /// straight to the client.
    static func exec(_ program: String, _ repository: String) throws -> Never {
        guard let path = Self.locate(program) else {
            throw GustError.internal("Cannot find \(program) on this server; install git.")
        }
        fflush(nil)
        // git gets stdin, stdout and stderr (sshd's channel) and nothing else this process opened.
        _ = gust_cloexec_from(3)
        var arguments: [UnsafeMutablePointer<CChar>?] = [strdup(program), strdup(repository), nil]
        execv(path, &arguments)
        throw GustError.internal("Cannot run \(path): \(String(cString: strerror(errno)))")
    }

    /// Has git-receive-pack cut a push's pack stream at `bytes` (git's `receive.maxInputSize`, given
    /// through the environment so that it follows `gust limits` with no write to the repository):
    /// without it a push could fill the server's disk before pre-receive, which bounds the
    /// repository as a whole (`PushBounds`), ever ran.
    static func boundPackStream(to bytes: Int) {
        let environment = ProcessInfo.processInfo.environment
        let index = environment["GIT_CONFIG_COUNT"].flatMap { Int($0) }.map { max(0, $0) } ?? 0
        setenv("GIT_CONFIG_KEY_\(index)", "receive.maxInputSize", 1)
        setenv("GIT_CONFIG_VALUE_\(index)", String(bytes), 1)
        setenv("GIT_CONFIG_COUNT", String(index + 1), 1)
    }

    /// sshd gives the forced command a minimal PATH; look in git's usual places too.
    static func locate(_ program: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/usr/lib/git-core"]
        return directories.lazy.map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// `logs/ssh_access.log`: one line per request, accepted or refused, for the admin. Named as no
/// app can be (`_`): an app's log is `logs/APP.log`, and it was `ssh.log`, so an app named `ssh`
/// wrote its output into it and, rotating it away, erased the record of every key's requests.
struct SSHLog {
    var file: URL
    var key: String
    var command: String

    static let fileName = "ssh_access.log"

    init(home: GustHome, key: String, command: String) {
        file = home.logs.appendingPathComponent(Self.fileName)
        self.key = key
        self.command = Self.shown(command)
    }

    /// The command as the log shows it: `config set`'s values never (a secret's is sealed in the
    /// store and never printed back; this file is plain, and backed up and shipped as it is).
    /// Each `NAME=value` word shows its name alone; a command whose words cannot be read, and
    /// that could hold one, is shown up to its first `=`.
    static func shown(_ command: String) -> String {
        guard let words = try? SSHCommandLine.words(command) else {
            guard let equals = command.firstIndex(of: "=") else { return command }
            return command[..<equals] + "=… (the rest not shown: it could hold a value)"
        }
        guard words.count > 2, words[0] == "config", words[1] == "set" else { return command }
        return words.enumerated().map { index, word in
            guard index > 1, let equals = word.firstIndex(of: "=") else { return word }
            return word[..<equals] + "=••••"
        }.joined(separator: " ")
    }

    /// Past this size the log is moved to `ssh_access.log.1` (the one before it goes) and a new
    /// one begun: every key's every request, refused ones too, adds a line, on the disk the store
    /// and every app share.
    static let maxBytes: off_t = 4 << 20

    /// Appends one line with a single write(2), so concurrent sessions never interleave within a line.
    func write(_ outcome: String, reason: String? = nil) {
        let from = ProcessInfo.processInfo.environment["SSH_CONNECTION"]?.split(separator: " ").first.map(String.init) ?? "-"
        var line = "\(ISO8601DateFormatter().string(from: Date())) \(outcome) key=\(Self.quoted(key)) from=\(from) command=\(Self.quoted(command))"
        if let reason { line += " reason=\(Self.quoted(reason))" }
        line += "\n"
        var fd = open(file.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return }
        var status = stat()
        if fstat(fd, &status) == 0, status.st_size >= Self.maxBytes {
            // Two sessions at once may both move it: the second moves a new, short file over the first's.
            close(fd)
            rename(file.path, file.path + ".1")
            fd = open(file.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { return }
        }
        defer { close(fd) }
        _ = line.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
    }

    /// Quoted, with control characters and quotes escaped and long input cut,
    /// so a client cannot forge or flood log lines.
    static func quoted(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(300) {
            switch scalar {
            case "\"", "\\": out += "\\\(scalar)"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value): out += String(format: "\\x%02x", scalar.value)
            // What reorders the text around it (a line reading other than it is), as the terminal shows it.
            case _ where (0x202A...0x202E).contains(scalar.value) || (0x2066...0x2069).contains(scalar.value) || scalar.value == 0x200F
                || scalar.value == 0x200E || scalar.value == 0x061C:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return "\"\(out)\(text.unicodeScalars.count > 300 ? "…" : "")\""
    }
}
