import Foundation
import GustCore

/// Which stack a build runs on (`StackChoice`), read from the app's pin files once it is detected.
extension Build {
    func chooseStack(for buildpack: Buildpack, source: URL) throws -> Stack? {
        guard !stacks.isEmpty else { return nil }
        let pin: RuntimePin?
        do { pin = try RuntimePin.read(from: source, buildpack: buildpack.name) } catch {
            throw GustError("The runtime pin cannot be read: \(error.message).", hint: "Fix or remove it and push again.")
        }
        let runtime = StackRuntime(buildpack: buildpack.name)
        guard let stack = try StackChoice.choose(runtime: runtime, pin: pin, stacks: stacks, defaultName: defaultStack) else { return nil }
        let offers = runtime.flatMap { runtime in runtime.version(in: stack).map { "\(runtime.displayName) \($0)" } }
        let why = pin.map { " (\($0.runtime.displayName) \($0.requested) pinned in \($0.file))" } ?? ""
        reporter.step("Stack \(stack.reference)\(offers.map { ": \($0)" } ?? "")\(why)")
        return stack
    }
}
