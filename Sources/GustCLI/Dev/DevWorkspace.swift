#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import GustCore

/// Where `gust dev` keeps what it needs for one work tree: a home of its own
/// in the user's cache (`$XDG_CACHE_HOME/gust/dev/HASH`, HASH from the tree's
/// real path), which the same gustd code that serves pushes runs over, with a
/// scratch store (releases, records, schedules) and the dependency builds.
///
/// Why a home and not a copy of gustd's logic: the dev server is gustd, run
/// with `--only-app` over this home, so it answers exactly as a server would.
struct DevWorkspace {
    /// The work tree, its symbolic links resolved.
    let tree: URL
    let home: GustHome
    /// The one app of the home, named after the tree's directory.
    let app: AppName

    /// The work tree `directory` (default: the current directory) and its dev home.
    static func locate(_ directory: String?) throws -> DevWorkspace {
        let given = directory ?? FileManager.default.currentDirectoryPath
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: given, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw GustError("\(Self.shown(given)) is not a directory.", hint: "Run `gust dev` in your app's directory, or name it: gust dev path/to/app")
        }
        guard let real = realpath(given, nil) else {
            throw GustError("Cannot read \(Self.shown(given)): \(String(cString: strerror(errno))).")
        }
        defer { free(real) }
        let tree = URL(fileURLWithPath: String(cString: real), isDirectory: true)
        let digest = Hex.lower(SHA256.hash(data: Data(tree.path.utf8))).prefix(16)
        let home = GustHome(path: cacheRoot().appendingPathComponent("gust/dev/\(digest)").path)
        return DevWorkspace(tree: tree, home: home, app: appName(for: tree))
    }

    /// `$XDG_CACHE_HOME`, else `~/.cache`.
    static func cacheRoot() -> URL {
        if let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"], cache.hasPrefix("/") {
            return URL(fileURLWithPath: cache, isDirectory: true)
        }
        return URL(fileURLWithPath: NSHomeDirectory(), isDirectory: true).appendingPathComponent(".cache")
    }

    /// The directory's name made an app name (`My App` → `my-app`), or `app`.
    static func appName(for tree: URL) -> AppName {
        var name = ""
        for scalar in tree.lastPathComponent.lowercased().unicodeScalars {
            let ok = ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
            if ok { name.unicodeScalars.append(scalar) } else if !name.isEmpty, !name.hasSuffix("-") { name += "-" }
        }
        while name.hasSuffix("-") { name.removeLast() }
        while let first = name.first, !first.isLetter { name.removeFirst() }
        return (try? AppName(String(name.prefix(40)))) ?? (try! AppName("app"))
    }

    /// Dependency builds, one per dependency key (`DevDependencies`).
    var dependencies: URL { home.root.appendingPathComponent("dependencies") }
    /// gustd's own log (its notices and errors), for when something goes wrong.
    var gustdLog: URL { home.root.appendingPathComponent("gustd.log") }
    /// Written by gustd once it listens: `127.0.0.1:PORT`.
    var addressFile: URL { home.run.appendingPathComponent("gustd.http") }

    /// The port the dev server of this tree listens on, if one runs.
    var runningPort: Int? {
        guard AdminClient(home: home, readTimeout: .seconds(5)).isRunning,
            let text = try? String(contentsOf: addressFile, encoding: .utf8),
            let address = ListenAddressText(text)
        else { return nil }
        return address.port
    }

    /// A path as it may be printed: control characters escaped, long ones cut.
    static func shown(_ path: String) -> String {
        var out = ""
        for scalar in path.unicodeScalars.prefix(200) {
            if scalar.value < 0x20 || scalar.value == 0x7F { out += String(format: "\\x%02x", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
        return "'\(out)\(path.unicodeScalars.count > 200 ? "…" : "")'"
    }
}

/// `HOST:PORT` as gustd writes it to `run/gustd.http`.
struct ListenAddressText {
    var host: String
    var port: Int

    init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let colon = trimmed.lastIndex(of: ":"), let port = Int(trimmed[trimmed.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(trimmed[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        // A wildcard listener is reached on loopback.
        if host == "0.0.0.0" || host.isEmpty { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        self.host = host
        self.port = port
    }
}
