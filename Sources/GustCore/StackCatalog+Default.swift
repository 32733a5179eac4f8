public import Foundation

/// The default stack: which name a build runs on when its app pins nothing that rules it out.
/// Set with `gust stacks default NAME` (kept in `GUST_HOME/stacks/default`); unset, it is the name
/// of the first stack built on this server, so that building a newer suite moves no app by itself.
extension StackCatalog {
    public var defaultFile: URL { home.stacks.appendingPathComponent("default") }

    /// The default name among `stacks` (any versions); nil when there are none.
    public func defaultName(among stacks: [Stack]) -> String? {
        let names = Set(stacks.map(\.reference.name))
        if let data = FileManager.default.contents(atPath: defaultFile.path), data.count <= 64,
            let chosen = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), names.contains(chosen)
        {
            return chosen
        }
        return stacks.min { ($0.createdAt, $0.reference) < ($1.createdAt, $1.reference) }?.reference.name
    }

    /// Makes `name` the default (it must name a built stack).
    public func setDefault(_ name: String) throws {
        guard try list().contains(where: { $0.reference.name == name }) else {
            throw GustError("No stack is named \(name).", hint: "`gust stacks list` shows the stacks; `gust stacks build \(name)` builds one.")
        }
        // Written through the directory's descriptor (root writes it; the home is gustd's user's).
        let file = try StacksDirectory(home: home).url.appendingPathComponent("default")
        try Data((name + "\n").utf8).write(to: file, options: .atomic)
        chmod(file.path, 0o644)
    }
}
