#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// A real OpenSSH `sshd` for one test: its own host key, on a free loopback
/// port, reading Gust's authorized_keys, logging into the scratch directory,
/// and stopped by PID when the test is done.
///
/// Tests run as root here and in CI, so the server logs in the current user
/// (`PermitRootLogin prohibit-password` lets root in with a key only).
public final class SSHServer: @unchecked Sendable {
    public static let executable = "/usr/sbin/sshd"
    public let directory: URL
    public let log: URL
    public private(set) var port = 0

    /// The account sshd logs clients in as: whoever runs the tests.
    public static var user: String { String(cString: getpwuid(geteuid()).pointee.pw_name) }
    /// The account this server logs clients in as (`user`, unless a test runs Gust as another).
    public let login: String

    /// - Parameter login: the account clients log in as; it must have a shell, and a key-only login
    ///   (not a locked password field, which sshd without PAM refuses).
    public init(authorizedKeys: URL, directory: URL, login: String = SSHServer.user) throws {
        self.directory = directory
        self.login = login
        log = directory.appendingPathComponent("sshd.log")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // sshd's privilege-separation directory; a fresh container may lack it.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let hostKey = directory.appendingPathComponent("ssh_host_ed25519_key")
        let keygen = try Command.run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey.path])
        guard keygen.status == 0 else { throw SSHServerFailure(log: keygen.output) }
        // A port found free may be taken before sshd binds it: try a few.
        for _ in 0..<5 {
            port = try LoopbackPort.free()
            let config = directory.appendingPathComponent("sshd_config")
            try Self.configuration(port: port, hostKey: hostKey, authorizedKeys: authorizedKeys, pidFile: directory.appendingPathComponent("sshd.pid"))
                .write(to: config, atomically: true, encoding: .utf8)
            if try start(config) { return }
        }
        throw SSHServerFailure(log: logText)
    }

    deinit { stop() }

    static func configuration(port: Int, hostKey: URL, authorizedKeys: URL, pidFile: URL) -> String {
        """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(hostKey.path)
        PidFile \(pidFile.path)
        AuthorizedKeysFile \(authorizedKeys.path)
        StrictModes no
        UsePAM no
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        UseDNS no
        PrintMotd no
        MaxStartups 64
        LogLevel VERBOSE

        """
    }

    /// Starts `sshd -D -e` and waits (bounded) until the port accepts; false if sshd exited.
    private func start(_ config: URL) throws -> Bool {
        let output = open(log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw SSHServerFailure(log: "open \(log.path): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        // sshd re-executes itself: an absolute path.
        let process = try ChildProcess(Self.executable, ["-D", "-e", "-f", config.path], standardOutput: output, standardError: output)
        listener = process
        for _ in 0..<600 {  // 30 s
            if LoopbackPort.accepts(port) { return true }
            guard process.isRunning else { break }
            usleep(50_000)
        }
        stop()
        return false
    }

    private var listener: ChildProcess?

    /// The listener's PID while it runs, 0 before and after.
    public var pid: Int32 { listener.flatMap { $0.isRunning ? $0.pid : nil } ?? 0 }
    public var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// SIGTERM to the listener and a bounded wait, then SIGKILL.
    public func stop() {
        listener?.stop(within: 5)
        listener = nil
    }
}

extension SSHServer {
    /// `ssh://USER@127.0.0.1:PORT/PATH`, for git remotes.
    public func url(_ path: String) -> String { "ssh://\(login)@127.0.0.1:\(port)/\(path)" }

    /// The real `ssh` client's options: this key only, no prompts, no known_hosts.
    public static func clientOptions(key: URL) -> [String] {
        ["-i", key.path, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-F", "/dev/null"]
    }

    /// For `GIT_SSH_COMMAND`: git adds `-p PORT` and the host from the URL.
    public static func gitSSHCommand(key: URL) -> String {
        (["ssh"] + clientOptions(key: key)).joined(separator: " ")
    }

    /// `ssh -T -p PORT USER@127.0.0.1 [COMMAND]`; stderr holds what the server refused.
    @discardableResult
    public func ssh(_ command: String?, key: URL, input: String? = nil) throws -> CommandResult {
        try Command.run(
            "ssh", Self.clientOptions(key: key) + ["-T", "-p", String(port), "\(login)@127.0.0.1"] + (command.map { [$0] } ?? []),
            input: input ?? "", timeout: 120
        )
    }
}

/// A key pair made by the real `ssh-keygen`.
public struct SSHKeyPair: Sendable {
    public let privateKey: URL
    public var publicKey: URL { URL(fileURLWithPath: privateKey.path + ".pub") }

    public static func generate(in directory: URL, name: String, type: String = "ed25519", bits: Int? = nil) throws -> SSHKeyPair {
        let file = directory.appendingPathComponent(name)
        let result = try Command.run(
            "ssh-keygen", ["-q", "-t", type, "-N", "", "-C", "\(name)@test", "-f", file.path] + (bits.map { ["-b", String($0)] } ?? [])
        )
        guard result.status == 0 else { throw SSHServerFailure(log: result.output) }
        return SSHKeyPair(privateKey: file)
    }

    /// What `ssh-keygen -lf KEY.pub` prints as the fingerprint (`SHA256:…`).
    public func fingerprint() throws -> String {
        let words = try Command.run("ssh-keygen", ["-lf", publicKey.path]).stdout.split(separator: " ")
        return words.count > 1 ? String(words[1]) : ""
    }
}

public struct SSHServerFailure: Error, CustomStringConvertible {
    public var log: String
    public var description: String { "sshd did not start:\n\(log)" }
}
