public import Foundation

/// A stack: a Debian root filesystem, built from Debian's packages with nothing of the host's, that a
/// release's build and its instances run on (the sandbox's root), and that an OCI export ships as a
/// layer of its own. Heroku and Cloud Foundry call the same thing a stack; the slug is the other half.
///
/// A stack has a name (its Debian suite by default: "bookworm", "trixie") and a version that grows
/// with each rebuild of that name, so a release keeps running on the exact root it was built on
/// while newer releases move to a newer one. On disk: `GUST_HOME/stacks/NAME@VERSION/` holding
/// `rootfs/` (read-only) and this description as `stack.json`, written last: a directory without
/// it is an unfinished build and is not a stack.
public struct Stack: Sendable, Codable, Equatable {
    /// "NAME@VERSION": how a release records its stack, and the stack's directory name.
    public struct Reference: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
        public let name: String
        public let version: Int

        public init(name: String, version: Int) throws {
            guard Self.isValidName(name) else {
                throw GustError("\"\(name)\" is not a stack name: use 1 to 32 lowercase letters, digits and '-', starting with a letter.")
            }
            guard version > 0 else { throw GustError("A stack's version is a positive number, not \(version).") }
            self.name = name
            self.version = version
        }

        /// Parses "bookworm@2"; anything else (a path, an empty part) is refused.
        public init(parsing text: String) throws {
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, let version = Int(parts[1]), String(version) == parts[1] else {
                throw GustError("\"\(text)\" is not a stack reference: expected NAME@VERSION, for example bookworm@1.")
            }
            try self.init(name: String(parts[0]), version: version)
        }

        public static func isValidName(_ name: String) -> Bool {
            guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.utf8.count <= 32 else { return false }
            return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        }

        public var description: String { "\(name)@\(version)" }
        public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.name, lhs.version) < (rhs.name, rhs.version) }

        public init(from decoder: any Decoder) throws { try self.init(parsing: try decoder.singleValueContainer().decode(String.self)) }
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }
    }

    public var reference: Reference
    /// The Debian suite it was built from ("bookworm").
    public var suite: String
    public var createdAt: Date
    /// The runtimes it offers, as their own `--version` prints them ("3.11.2", "18.19.0"); nil when absent.
    public var python: String?
    public var node: String?
    /// Bytes of `rootfs/` on disk.
    public var sizeBytes: Int?

    public init(reference: Reference, suite: String, createdAt: Date, python: String?, node: String?, sizeBytes: Int?) {
        self.reference = reference
        self.suite = suite
        self.createdAt = createdAt
        self.python = python
        self.node = node
        self.sizeBytes = sizeBytes
    }

    /// The stack's root filesystem under `home`.
    public func rootfs(in home: GustHome) -> URL { Self.rootfs(of: reference, in: home) }
    public static func rootfs(of reference: Reference, in home: GustHome) -> URL {
        home.stack(reference).appendingPathComponent("rootfs")
    }
    public static func descriptionFile(of reference: Reference, in home: GustHome) -> URL {
        home.stack(reference).appendingPathComponent("stack.json")
    }
}

/// Reads the stacks of a home: the finished ones, as their `stack.json` describe them.
public struct StackCatalog: Sendable {
    public let home: GustHome
    public init(home: GustHome) { self.home = home }

    /// Every finished stack, by name then version.
    public func list() throws -> [Stack] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: home.stacks.path)) ?? []
        return names.compactMap { try? Stack.Reference(parsing: $0) }.compactMap { try? stack($0) }.sorted { $0.reference < $1.reference }
    }

    /// The stack, or nil when no finished stack has this reference.
    public func stack(_ reference: Stack.Reference) throws -> Stack? {
        guard let data = FileManager.default.contents(atPath: Stack.descriptionFile(of: reference, in: home).path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let stack = try decoder.decode(Stack.self, from: data)
        guard stack.reference == reference else {
            throw GustError("\(Stack.descriptionFile(of: reference, in: home).path) describes \(stack.reference), not \(reference).")
        }
        return stack
    }

    /// The newest version of each name.
    public func newest() throws -> [Stack] {
        var byName: [String: Stack] = [:]
        for stack in try list() where (byName[stack.reference.name]?.reference.version ?? 0) < stack.reference.version {
            byName[stack.reference.name] = stack
        }
        return byName.values.sorted { $0.reference < $1.reference }
    }

    /// `stack.json`'s bytes for `stack`: sorted keys and ISO 8601 dates, so the same stack always reads the same.
    public static func encode(_ stack: Stack) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(stack)
    }
}
