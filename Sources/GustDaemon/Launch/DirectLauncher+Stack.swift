import Foundation
import GustCore

/// A release built on a stack runs only on that stack, which only the sandbox can give it: without
/// one (`--sandbox none`) it would run on the host's interpreter, which its virtual environment was
/// not built for, so it is refused with the reason instead.
extension DirectLauncher {
    func checkStack() throws {
        guard let name = release.stack else { return }
        guard let reference = release.stackReference else {
            throw GustError("v\(version) of \(app) records \"\(name)\" as its stack, which is not a stack reference.", code: 503)
        }
        guard spawner.isSandboxed else {
            throw GustError(
                "v\(version) of \(app) was built on stack \(reference) and runs only on it, in the sandbox; this gustd runs without one (--sandbox none).",
                code: 503
            )
        }
        guard (try? StackCatalog(home: configuration.home).stack(reference)) != nil else {
            throw GustError(
                "v\(version) of \(app) runs on stack \(reference), which is not on this server (`gust stacks list`): build it (`\(MissingStack(reference: reference, releases: []).command)`) or push again to build on another.",
                code: 503
            )
        }
    }
}

extension Release {
    /// `stack` parsed; nil for a release on the host's system (or a value that is no reference).
    var stackReference: Stack.Reference? { stack.flatMap { try? Stack.Reference(parsing: $0) } }
}
