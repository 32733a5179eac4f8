public import Foundation

/// A buildpack directory with Heroku's `bin/detect`, `bin/compile`, `bin/release`.
public struct Buildpack: Sendable, Equatable {
    /// The directory name: `python`, `node`.
    public var name: String
    public var directory: URL

    public var detect: URL { directory.appendingPathComponent("bin/detect") }
    public var compile: URL { directory.appendingPathComponent("bin/compile") }
    public var release: URL { directory.appendingPathComponent("bin/release") }

    /// The order detection asks them in; the first that says yes wins.
    public static let order = ["python", "node"]

    /// What each buildpack looks for, for the message when none matches.
    public static let lookedFor = [
        "python": "requirements.txt or a top-level __init__.py (Python)",
        "node": "package.json (Node.js)",
    ]

    public static func all(in buildpacks: URL) -> [Buildpack] {
        order.map { Buildpack(name: $0, directory: buildpacks.appendingPathComponent($0)) }
    }
}
