import GustManifests

/// Reading a generated tree in tests: `doc["spec"]?["template"]?[0]`.
extension YAMLNode {
    subscript(index: Int) -> YAMLNode? {
        guard case .list(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    var string: String? { if case .string(let text) = self { text } else { nil } }
    var int: Int? { if case .int(let number) = self { number } else { nil } }
    var items: [YAMLNode] { if case .list(let items) = self { items } else { [] } }
    var keys: [String] { if case .map(let entries) = self { entries.map(\.key) } else { [] } }

    /// The entry of a list of `name:` maps (env, containers, ports) with that name.
    func named(_ name: String) -> YAMLNode? { items.first { $0["name"]?.string == name } }
}
