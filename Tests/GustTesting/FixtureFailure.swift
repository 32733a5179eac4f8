/// A test fixture (a stack, podman, an exported image) that could not be set up: what failed, with its output.
public struct FixtureFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
