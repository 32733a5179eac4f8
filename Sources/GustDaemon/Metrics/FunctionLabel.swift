import GustCore

/// The `function` label of a call, bounded by the release's manifest: an op
/// or handler the manifest declares is named as declared, anything else
/// (a typo, a scanner's path, a release not started yet) is `other`.
enum FunctionLabel {
    static let other = "other"

    static func op(_ name: String, in manifest: FunctionManifest?) -> String {
        guard let manifest, manifest.ops.contains(where: { $0.name == name }) else { return other }
        return name
    }

    /// A handler as its registration spells it: the runtimes compare paths without
    /// leading and trailing slashes (docs/runtime-protocol.md), so this does too.
    static func handler(_ path: String, in manifest: FunctionManifest?) -> String {
        let wanted = trimmed(path)
        guard let manifest, let handler = manifest.handlers.first(where: { trimmed($0.path) == wanted }) else { return other }
        return "/" + trimmed(handler.path)
    }

    private static func trimmed(_ path: String) -> Substring {
        var path = Substring(path)
        while path.hasPrefix("/") { path = path.dropFirst() }
        while path.hasSuffix("/") { path = path.dropLast() }
        return path
    }
}

/// The function labels gustd has used for each app, at most `perApp`: past it an app's new names
/// are `other`. Releases follow one another with new names (a push, a `gust config set`), and
/// each name's series live as long as gustd: without a bound an app could grow gustd's memory,
/// its metrics registry (whose every new series copies its family) and every scrape, release
/// after release.
struct FunctionLabelBudget {
    static let perApp = 200
    private var used: [AppName: Set<String>] = [:]

    /// `function` if the app has used it or has room for it, else `other`.
    mutating func label(_ function: String, of app: AppName) -> String {
        if used[app]?.contains(function) == true { return function }
        guard used[app, default: []].count < Self.perApp else { return FunctionLabel.other }
        used[app, default: []].insert(function)
        return function
    }
}
