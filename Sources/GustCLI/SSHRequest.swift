import ArgumentParser
import GustCore

/// What a client asked for over SSH, once its words are known.
enum SSHRequest: Equatable {
    /// `help`, or no command at all.
    case help
    /// `git push` (receive-pack) or `git fetch`/`clone` (upload-pack) for an app.
    case git(GitService, AppName)
    /// One of Gust's everyday commands, as words for `GustCommand`.
    case gust([String])

    enum GitService: String {
        case receivePack = "git-receive-pack"
        case uploadPack = "git-upload-pack"
    }

    /// The commands that may be run over SSH at all; which of their subcommands
    /// a key may run is decided by `SSHAccess` once they are parsed.
    static let gustCommands: Set<String> = ["call", "apps", "releases", "rollback", "logs", "drains", "schedules", "scale", "limits", "ps", "config", "tokens", "domains", "keys"]

    static func parse(_ words: [String]) throws(SSHRefusal) -> SSHRequest {
        guard let first = words.first else { return .help }
        if first == "help" || first == "--help" || first == "-h" { return .help }
        if let service = GitService(rawValue: first) {
            guard words.count == 2 else {
                throw SSHRefusal("\(first) takes exactly one repository, like '\(first) cats.git'.")
            }
            return .git(service, try appName(repository: words[1]))
        }
        guard gustCommands.contains(first) else {
            throw SSHRefusal("'\(first.prefix(40))' is not a Gust command; Gust runs nothing else over SSH. Run `help` to see what this key may do.")
        }
        // The home is the server's, injected by ssh-command; a client may not pick another.
        if let word = words.first(where: { $0 == "--" || $0.hasPrefix("--home") }) {
            throw SSHRefusal("'\(word)' is not allowed over SSH: the server chooses Gust's home.")
        }
        return .gust(words)
    }

    /// `cats.git`, `/cats.git`, `~/cats.git` or `cats` → `cats`; anything that
    /// is not an app name afterwards (`../x`, `a/b`) is refused.
    static func appName(repository: String) throws(SSHRefusal) -> AppName {
        var path = Substring(repository)
        if path.hasPrefix("~/") {
            path = path.dropFirst(2)
        } else if path.hasPrefix("/") {
            path = path.dropFirst()
        }
        if path.hasSuffix(".git") { path = path.dropLast(4) }
        guard let name = try? AppName(String(path)) else {
            throw SSHRefusal("'\(repository.prefix(80))' is not an app repository: use APP.git, where \(AppName.rule).")
        }
        return name
    }
}

/// Commands that act on one app, named by their `app` argument.
protocol AppScopedCommand {
    var app: String { get }
}

extension ReleasesCommand.List: AppScopedCommand {}
extension ReleasesCommand.Show: AppScopedCommand {}
extension RollbackCommand: AppScopedCommand {}
extension LogsCommand: AppScopedCommand {}
extension DrainsCommand.Add: AppScopedCommand {}
extension DrainsCommand.List: AppScopedCommand {}
extension DrainsCommand.Remove: AppScopedCommand {}
extension SchedulesCommand: AppScopedCommand {}
extension ScaleCommand: AppScopedCommand {}
extension LimitsCommand: AppScopedCommand {}
extension PsCommand: AppScopedCommand {}
extension ConfigCommand.Show: AppScopedCommand {}
extension ConfigCommand.Set: AppScopedCommand {}
extension ConfigCommand.Unset: AppScopedCommand {}
extension TokensCommand.Create: AppScopedCommand {}
extension TokensCommand.List: AppScopedCommand {}
extension TokensCommand.Revoke: AppScopedCommand {}
extension DomainsCommand.Add: AppScopedCommand {}
extension DomainsCommand.Remove: AppScopedCommand {}
extension DomainsCommand.Renew: AppScopedCommand {}
extension CallCommand: AppScopedCommand {}

/// Which parsed commands a key may run.
///
/// Admin keys may run every command Gust offers over SSH. A scoped key may
/// list its apps and run the app commands (releases, rollback, logs, drains,
/// schedules, scale, config, tokens, domains) on the apps it was granted: the same power pushing to them gives.
/// Creating, destroying and changing apps, and managing keys, stay with admins.
enum SSHAccess {
    static func check(_ command: any ParsableCommand, key: SSHKey) throws(SSHRefusal) {
        if command is SSHCommand { throw SSHRefusal("ssh-command cannot be run over SSH.") }
        // An image export writes (and replaces) a file or directory on the server, as Gust's own user: never a caller's to name.
        if let export = command as? ReleasesCommand.Export, export.image.wanted {
            throw SSHRefusal("`releases export --oci/--archive` writes files on the server: run it there, as the gust user.")
        }
        // What `--help` parses to is ArgumentParser's own help command: it prints usage text, nothing more.
        if String(reflecting: type(of: command)).hasPrefix("ArgumentParser.") { return }
        // The server's own gustd only: not a dev server, not another port of this machine.
        if let call = command as? CallCommand, call.dev || call.dir != nil || call.port != nil {
            throw SSHRefusal("`call --dev`, --dir and --port are not available over SSH: `call APP OP [JSON]` calls the server's apps.")
        }
        if key.isAdmin { return }
        if command is AppsCommand.List { return }
        // Without an app, ssh-command narrows the list to the key's apps.
        if let domains = command as? DomainsCommand.List, domains.appArgument == nil { return }
        // Console tokens reach every app a scope names, or all of them: only admins hand them out.
        if (command as? TokensCommand.Create)?.console == true || (command as? TokensCommand.List)?.console == true
            || (command as? TokensCommand.Revoke)?.console == true
        {
            throw SSHRefusal("Only admin keys may manage console tokens; key '\(key.name)' may use \(key.apps.isEmpty ? "no apps yet" : key.scope).")
        }
        if let limits = command as? LimitsCommand, limits.ceilings {
            throw SSHRefusal("Only admin keys may see or set the ceilings; key '\(key.name)' may run `limits APP` on \(key.apps.isEmpty ? "no apps yet" : key.scope).")
        }
        if let drain = command as? DrainsCommand.Add, drain.allowPrivate {
            throw SSHRefusal("Only admin keys may let a drain reach private addresses (--allow-private).")
        }
        // Over SSH an export only prints (manifests); it never writes files on the server.
        if let export = command as? ReleasesCommand.Export, !export.printsOnly {
            throw SSHRefusal("Over SSH, `releases export` prints manifests only (--kubernetes); image exports are written on the server by an admin there.")
        }
        if let scoped = command as? any AppScopedCommand {
            guard let app = try? AppName(scoped.app) else { return }  // the command itself reports the bad name
            guard key.mayUse(app) else {
                throw SSHRefusal("Key '\(key.name)' may not use app '\(app)'. An admin can allow it: gust keys grant \(key.name) \(app)")
            }
            return
        }
        throw SSHRefusal("Only admin keys may run that; key '\(key.name)' may use \(key.apps.isEmpty ? "no apps yet" : key.scope). Run `help` to see what it may do.")
    }
}
