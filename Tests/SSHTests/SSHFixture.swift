import Foundation
import GustCore
import GustTesting

/// A scratch GUST_HOME, a real sshd reading its authorized_keys, and helpers
/// to make keys with ssh-keygen and register them with the real `gust keys add`.
final class SSHFixture: Sendable {
    let root: URL
    let home: GustHome
    let server: SSHServer

    init(root: URL = ScratchDirectory.current) throws {
        self.root = root
        home = GustHome(path: root.appendingPathComponent("home").path)
        try home.prepare()
        server = try SSHServer(authorizedKeys: home.authorizedKeys, directory: root.appendingPathComponent("sshd"))
    }

    /// A new ed25519 key pair in the scratch directory.
    func keyPair(_ name: String, type: String = "ed25519", bits: Int? = nil) throws -> SSHKeyPair {
        try SSHKeyPair.generate(in: root, name: name, type: type, bits: bits)
    }

    /// `gust keys add NAME FILE EXTRA…`, which must succeed.
    @discardableResult
    func addKey(_ name: String, _ pair: SSHKeyPair, _ extra: [String] = []) throws -> CommandResult {
        let result = try gust(["keys", "add", name, pair.publicKey.path] + extra)
        guard result.status == 0 else { throw GitFailure(arguments: ["gust keys add", name], result: result) }
        return result
    }

    /// `gust ARGS… --home HOME`.
    @discardableResult
    func gust(_ arguments: [String], input: String? = nil) throws -> CommandResult {
        try Command.run(GustBinaries.gust, arguments + ["--home", home.path], input: input)
    }

    /// `ssh … COMMAND` with this key.
    @discardableResult
    func ssh(_ command: String?, as pair: SSHKeyPair, input: String? = nil) throws -> CommandResult {
        try server.ssh(command, key: pair.privateKey, input: input)
    }

    /// A working copy of `examples/python-cats`, committed, to push from.
    func workspace(_ name: String) throws -> GitWorkspace {
        let example = GustBinaries.sourceRoot.appendingPathComponent("examples/python-cats")
        let work = try GitWorkspace(at: root.appendingPathComponent("work-\(name)"), copying: example)
        try work.commit("Cats")
        return work
    }

    /// `git push ssh://…/APP.git main` with this key.
    func push(_ work: GitWorkspace, app: String, as pair: SSHKeyPair) throws -> CommandResult {
        try work.push(to: server.url("\(app).git"), environment: ["GIT_SSH_COMMAND": SSHServer.gitSSHCommand(key: pair.privateKey)])
    }

    var sshLog: String { (try? String(contentsOf: home.logs.appendingPathComponent("ssh_access.log"), encoding: .utf8)) ?? "" }

    func appExists(_ app: String) throws -> Bool {
        try Store(home: home).app(try AppName(app)) != nil
    }
}
