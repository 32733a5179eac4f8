public import Foundation

/// `GUST_HOME/ssh/authorized_keys`, regenerated from the keys table.
///
/// Gust owns only the lines between its two markers; anything else in the file
/// (an admin's own key, say) is kept as it is. Every change to the keys runs
/// under one file lock and ends by writing the whole file to a temporary name
/// and renaming it, so sshd reads the old file or the new one, never half, and
/// two `gust keys` commands at once cannot lose each other's key.
public enum AuthorizedKeys {
    public static let beginMarker = "# BEGIN GUST KEYS — managed by gust keys; edits here are overwritten"
    public static let endMarker = "# END GUST KEYS"

    /// Runs `change` (a write to the keys table) and regenerates the file, both
    /// under `locks/authorized_keys.lock`.
    ///
    /// `gust` is the absolute path of the executable sshd should run.
    public static func update<T>(_ store: Store, gust: URL, _ change: () throws -> T) throws -> T {
        let lock = try FileLock(store.home.locks.appendingPathComponent("authorized_keys.lock"))
        defer { withExtendedLifetime(lock) {} }
        let value = try change()
        try write(store, gust: gust)
        return value
    }

    /// Writes the file from the keys as they are now. Call with the lock held.
    static func write(_ store: Store, gust: URL) throws {
        let file = store.home.authorizedKeys
        let existing = FileManager.default.fileExists(atPath: file.path)
            ? try String(contentsOf: file, encoding: .utf8) : ""
        let lines = try store.sshKeys().map { line(for: $0, gust: gust, home: store.home) }
        let text = try merge(existing, block: lines)
        try AtomicFile.write(Data(text.utf8), to: file, mode: 0o600)
    }

    /// One key's line: sshd runs `gust ssh-command NAME --fingerprint FP` whatever the client
    /// asked for, and `restrict` takes away forwarding, a pty and user rc files.
    ///
    /// The fingerprint binds the line to the key: sshd fixes the command when a connection logs in
    /// and runs it for every later session on it (ControlMaster), so a command naming the key
    /// alone let a connection of a removed key act as the next key given its name.
    public static func line(for key: SSHKey, gust: URL, home: GustHome) -> String {
        // `--home` after the subcommand: options belong to the subcommand that declares them.
        let command = [
            shellWord(gust.path), "--home", shellWord(home.path), "ssh-command", key.name.rawValue, "--fingerprint", shellWord(key.fingerprint),
        ].joined(separator: " ")
        // Inside the option's double quotes sshd unescapes only \" (and keeps other backslashes).
        let quoted = command.replacingOccurrences(of: "\"", with: "\\\"")
        return "command=\"\(quoted)\",restrict \(key.type) \(key.key)"
    }

    /// Replaces the block between the markers in `existing` with `block`, or
    /// appends it when there is none yet.
    public static func merge(_ existing: String, block: [String]) throws(GustError) -> String {
        var before: [Substring] = [], after: [Substring] = []
        var state = 0  // 0: before the block, 1: inside, 2: after
        for line in existing.split(separator: "\n", omittingEmptySubsequences: false) {
            switch (state, line) {
            case (0, _) where line == beginMarker: state = 1
            case (1, _) where line == endMarker: state = 2
            case (0, _): before.append(line)
            case (1, _): continue
            default:
                guard line != beginMarker else { throw damaged("a second '\(beginMarker)' line") }
                after.append(line)
            }
        }
        guard state != 1 else { throw damaged("'\(beginMarker)' without its '\(endMarker)' line") }
        // The trailing empty piece split leaves after the final newline is not a line.
        if state == 0, before.last == "" { before.removeLast() }
        if state == 2, after.last == "" { after.removeLast() }
        let ours = [beginMarker] + block + [endMarker]
        return (before.map(String.init) + ours + after.map(String.init)).joined(separator: "\n") + "\n"
    }

    private static func damaged(_ what: String) -> GustError {
        GustError(
            "The authorized_keys file has \(what), so Gust cannot tell its lines from yours.",
            code: 500, hint: "Fix the markers by hand (or move the file away), then run the command again."
        )
    }

    /// The forced command is run by the user's shell (`$SHELL -c`): quote paths
    /// that hold anything but the characters no shell treats specially.
    static func shellWord(_ text: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:,@%=")
        guard !text.isEmpty, !text.allSatisfy(safe.contains) else { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
