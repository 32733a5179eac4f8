import ArgumentParser
import Foundation
import GustCore

/// `gust backup DIR` and `gust restore DIR`: a home copied off the server and
/// brought back, every app live again at its release (HomeBackup says what is in one).
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the home (store, record stores, artifacts, repositories, keys, logs) into a new directory.",
        discussion: """
            Safe while gustd runs and pushes land: the stores are copied through SQLite's online backup \
            API, and the store first, so every release it lists has its artifact. Unpacked releases, the \
            buildpack cache and run-time files are left out (gustd rebuilds them). The directory holds the \
            keys, tokens and secret config values: keep it as private as the home. `gust restore DIR` brings it back.
            """
    )
    @OptionGroup var home: HomeOptions
    @Argument(help: "A new directory to write the backup into (or an empty one of this user's that no one else may write in).") var directory: String

    func run() throws {
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let manifest = try HomeBackup.backup(home.gustHome, to: target)
        let apps = manifest.apps.sorted { $0.key < $1.key }.map { "\($0.key)\($0.value.map { " v\($0)" } ?? "")" }
        print("Backed up \(home.gustHome.path) into \(target.path): \(apps.isEmpty ? "no apps" : apps.joined(separator: ", ")).")
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup made by `gust backup` into a new home.",
        discussion: """
            The home must not have a store yet, and no gustd may run for it. The backup's directory must be \
            this user's (or root's) and closed to others' writes, as gust backup makes it. The apps' git hooks and the SSH \
            keys' forced command are rewritten for this home and this installation of gust. A restore that \
            stops half-way is taken up by running it again (gustd does not start on such a home). A backup leaves \
            the stacks out: restore names the ones the releases run on and the `gust stacks build NAME --version N` \
            that makes each again. Then start gustd for the home: it unpacks and starts every app's live release.
            """
    )
    @OptionGroup var home: HomeOptions
    @Argument(help: "The backup's directory.") var directory: String

    func run() throws {
        let target = home.gustHome
        guard !AdminClient(home: target).isRunning else {
            throw GustError("A gustd is running for \(target.path).", hint: "Restore into a new home, with no gustd running for it.")
        }
        let source = URL(fileURLWithPath: directory).standardizedFileURL
        if FileManager.default.fileExists(atPath: target.restoreUnfinished.path) {
            print("A restore into \(target.path) did not finish; this one replaces what it left.")
        }
        let manifest = try HomeBackup.restore(from: source, into: target, installation: try Installation.current())
        let apps = manifest.apps.sorted { $0.key < $1.key }.map { "\($0.key)\($0.value.map { " v\($0)" } ?? "")" }
        print("Restored \(apps.isEmpty ? "no apps" : apps.joined(separator: ", ")) into \(target.path) from \(source.path).")
        let missing = try Store(home: target).missingStacks()
        if !missing.isEmpty {
            print("Its releases run on stacks a backup leaves out; build each (as root) before starting gustd, or those releases cannot start or export:")
            for stack in missing { print("  \(stack.line) --home \(target.path)") }
        }
        print("Start gustd for it (`gustd --home \(target.path)`, or the systemd unit) to serve them.")
    }
}
