import Foundation
import GustCore

/// What `ssh gust@server help` (or no command) prints: what this key may do,
/// with the server's own address filled in where sshd tells it.
enum SSHHelp {
    static func text(for key: SSHKey, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let (ssh, url) = addresses(environment)
        let apps = key.isAdmin ? "every app (an admin key; a first push creates the app)" : key.apps.isEmpty ? "no apps yet" : key.scope
        let app = key.isAdmin ? "APP" : key.apps.first?.rawValue ?? "APP"
        var lines = [
            "Gust: you are connected with key '\(key.name)', which may use \(apps).",
            "",
            "  git remote add gust \(url)/\(app).git",
            "  git push gust main                        deploy; the build streams back",
            "  git clone \(url)/\(app).git",
            "",
            "  \(ssh) apps                       the apps this key may use",
            "  \(ssh) releases \(app)               releases, newest first",
            "  \(ssh) releases show \(app) v3       one release and its build log",
            "  \(ssh) releases export \(app) v3 --kubernetes  manifests for kubectl apply -f -",
            "  \(ssh) rollback \(app) [v3]          make an earlier release live again",
            "  \(ssh) call \(app) OP [-v] - < args.json  call an op (JSON on stdin); -v: status, log lines",
            "  \(ssh) logs \(app) [-n 100] [-f]     what the functions printed",
            "  \(ssh) drains add \(app) URL        forward its log (https://… NDJSON, syslog://HOST:PORT)",
            "  \(ssh) schedules \(app)              its schedules and their last runs",
            "  \(ssh) scale \(app) [--max 4]        how many instances serve it",
            "  \(ssh) limits \(app) [--memory 256M]  what its instances may use (under the admin's ceilings)",
            "  \(ssh) ps \(app)                     its instances: state, calls, memory",
            "  \(ssh) config \(app)                 config vars (set/unset change them)",
            "  \(ssh) tokens list \(app)            tokens for a private app",
            "  \(ssh) domains add \(app) NAME        its own domain (list, remove, renew too)",
        ]
        if key.isAdmin {
            lines += [
                "  \(ssh) apps create|set|destroy …",
                "  \(ssh) limits --ceilings [--memory 1G] [--max-instances 8]   caps for scoped keys",
                "  \(ssh) keys list|add|remove|grant|revoke …   (keys add NAME - < key.pub)",
            ]
        }
        lines += ["", "Add --help to any command for its options. Nothing else runs here: there is no shell."]
        return lines.joined(separator: "\n")
    }

    /// `ssh -p PORT USER@HOST` and `ssh://USER@HOST:PORT` from `SSH_CONNECTION`.
    static func addresses(_ environment: [String: String]) -> (ssh: String, url: String) {
        let user = environment["USER"] ?? environment["LOGNAME"] ?? "gust"
        let parts = (environment["SSH_CONNECTION"] ?? "").split(separator: " ")
        guard parts.count == 4 else { return ("ssh \(user)@SERVER", "ssh://\(user)@SERVER") }
        let host = parts[2].contains(":") ? "[\(parts[2])]" : String(parts[2])
        let port = parts[3] == "22" ? "" : String(parts[3])
        return (port.isEmpty ? "ssh \(user)@\(host)" : "ssh -p \(port) \(user)@\(host)",
                "ssh://\(user)@\(host)\(port.isEmpty ? "" : ":\(port)")")
    }
}
