import Crypto
import Foundation
import GustBuild
import GustCore

/// The part of a release that `gust dev` builds once per set of dependencies:
/// the buildpack's `bin/compile` over a copy of the work tree, exactly as a
/// push runs it (pip or npm, the buildpack's own venv/modules cache by hash in
/// the dev home's build cache, the runtime and its start script). A release
/// is then the work tree's files beside links to what this built (`.venv`,
/// `node_modules`, `.gust`): a code change costs a copy of the code, not pip.
struct DevDependencies {
    /// What one dependency build left: its directory and how to start it.
    struct Built: Codable {
        var buildpack: String
        var process: String
        /// Names at the top of the build directory that a release links to.
        var links: [String]
    }

    /// What a build makes that a release links to, when the build made it.
    static let linkable = [".venv", "node_modules", ".gust"]

    let workspace: DevWorkspace
    let installation: Installation
    /// The buildpacks' files as found at start (a new Gust builds again).
    private let buildpacks: String

    init(workspace: DevWorkspace, installation: Installation) {
        self.workspace = workspace
        self.installation = installation
        let files = (try? DevTree.scan(installation.buildpacks))?.files ?? [:]
        buildpacks = files.sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value.size) \($0.value.modified.tv_sec).\($0.value.modified.tv_nsec)\n" }.joined()
    }

    /// Same dependency files and same buildpacks → same key.
    func key(of tree: DevTree) -> String {
        var hash = SHA256()
        for name in DevTree.dependencyFiles {
            hash.update(data: Data("\(name)\0".utf8))
            if tree.files[name] != nil, let data = FileManager.default.contents(atPath: workspace.tree.appendingPathComponent(name).path) {
                hash.update(data: data)
            }
            hash.update(data: Data([0]))
        }
        hash.update(data: Data(buildpacks.utf8))
        return hash.finalize().map { String(format: "%02x", $0) }.joined().prefix(16).description
    }

    func directory(_ key: String) -> URL { workspace.dependencies.appendingPathComponent(key) }

    /// The build for `key`, made now if there is none yet (its output printed as a push prints it).
    func prepare(_ key: String, tree: DevTree, config: [String: String]) async throws -> Built {
        let fm = FileManager.default
        let directory = directory(key)
        let metadata = directory.appendingPathComponent(".gust-dev.json")
        if let data = fm.contents(atPath: metadata.path), let built = try? JSONDecoder().decode(Built.self, from: data) {
            return built
        }
        try fm.createDirectory(at: workspace.dependencies, withIntermediateDirectories: true)
        let staging = workspace.dependencies.appendingPathComponent(".building-\(key)-\(getpid())")
        try? fm.removeItem(at: staging)
        defer { try? fm.removeItem(at: staging) }
        try tree.copy(from: workspace.tree, to: staging)
        // Modules vendored in the tree (no package.json dependencies) are the app's, as a push would carry them.
        let vendored = workspace.tree.appendingPathComponent("node_modules")
        if fm.fileExists(atPath: vendored.path) { try fm.copyItem(at: vendored, to: staging.appendingPathComponent("node_modules")) }

        var build = Build(
            app: workspace.app, commit: "work tree", home: workspace.home, buildpacks: Buildpack.all(in: installation.buildpacks),
            config: config, settings: BuildSettings(), reporter: BuildReporter()
        )
        build.settings.sandbox = nil  // the developer's own code on their own machine, as they would run it
        let (buildpack, process) = try await build.compile(tree: staging)
        let built = Built(buildpack: buildpack, process: process, links: Self.linkable.filter { fm.fileExists(atPath: staging.appendingPathComponent($0).path) })
        try JSONEncoder().encode(built).write(to: staging.appendingPathComponent(".gust-dev.json"))
        try? fm.removeItem(at: directory)
        try fm.moveItem(at: staging, to: directory)
        prune(keeping: key)
        return built
    }

    /// Keeps the newest two builds: the one in use and the one before it.
    private func prune(keeping key: String) {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: workspace.dependencies.path)) ?? []
        let dated = names.filter { !$0.hasPrefix(".") && $0 != key }.compactMap { name -> (String, Date)? in
            let date = (try? fm.attributesOfItem(atPath: workspace.dependencies.appendingPathComponent(name).path)[.modificationDate] as? Date) ?? nil
            return date.map { (name, $0) }
        }
        for (name, _) in dated.sorted(by: { $0.1 > $1.1 }).dropFirst(1) {
            try? fm.removeItem(at: workspace.dependencies.appendingPathComponent(name))
        }
    }

    /// A release directory: the tree's files, and links to what the build made.
    func makeRelease(at destination: URL, tree: DevTree, key: String, built: Built) throws {
        let fm = FileManager.default
        let staging = destination.deletingLastPathComponent().appendingPathComponent(".dev-\(destination.lastPathComponent)-\(getpid())")
        try? fm.removeItem(at: staging)
        try tree.copy(from: workspace.tree, to: staging)
        for name in built.links {
            let link = staging.appendingPathComponent(name)
            try? fm.removeItem(at: link)
            try fm.createSymbolicLink(at: link, withDestinationURL: directory(key).appendingPathComponent(name))
        }
        try? fm.removeItem(at: destination)
        try fm.moveItem(at: staging, to: destination)
    }
}
