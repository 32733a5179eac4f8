#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustBuild
import GustCore

/// A push's build as gustd runs it for the hook (`POST /v1/build`): the tree
/// the hook exported, built with the app's config, number, limits and stacks
/// as the store has them, under gustd's build limits (`--build-timeout` …),
/// in gustd's sandbox (`--sandbox`) and cgroup tree.
extension Supervisor {
    /// The build of `request`'s workspace, ready to run, and the workspace; throws if the app or the
    /// workspace is not one gustd builds.
    func prepareBuild(_ request: AdminBuildRequest, app: AppName, reporter: BuildReporter) throws -> (Build, URL) {
        let home = configuration.home
        _ = try store.requireApp(app)
        let workspace = URL(fileURLWithPath: request.workspace)
        guard Build.isWorkspace(workspace, of: app, in: home) else {
            throw GustError("\(request.workspace) is not a build directory of \(app) under \(home.tmp.path).", code: 400)
        }
        let source = workspace.appendingPathComponent("app")
        guard access(source.path, R_OK | X_OK) == 0 else {
            throw GustError(
                "gustd cannot read the pushed tree at \(source.path): \(String(cString: strerror(errno))).", code: 403,
                hint: "Run gust-receive (the git side) as gustd's user, as the installer sets up: docs/security.md."
            )
        }
        guard request.buildpacks.hasPrefix("/") else {
            throw GustError("The build request names no buildpacks directory.", code: 400)
        }
        // gustd's limits (--build-timeout …) and sandbox: nothing of the push's sets them.
        var settings = configuration.buildSettings
        settings.sandbox = configuration.sandbox
        // Without the sandbox too, builds find the interpreters a sandbox has (BuildSettings.hostPath).
        settings.hostPath = Sandbox.path
        reporter.mask(try store.secretValues(app))
        var build = Build(
            app: app, commit: request.commit, home: home,
            buildpacks: Buildpack.all(in: URL(fileURLWithPath: request.buildpacks)),
            config: try store.openedConfig(app), settings: settings, reporter: reporter
        )
        build.appNumber = try store.appNumber(app)
        let limits = try store.effectiveLimits(app)
        build.cacheLimit = limits.disk
        build.limits = limits
        build.limitMechanism = limitMechanism
        let stacks = StackCatalog(home: home)
        build.stacks = try stacks.newest()
        build.defaultStack = stacks.defaultName(among: try stacks.list())
        return (build, workspace)
    }
}
