public import Foundation
public struct Artifact: Sendable, Equatable { public var digest: String; public var size: Int; public var url: URL }
public enum Artifacts {
    public static let fileExtension = "tar.zst"
    public static func pack(_ directory: URL, into artifactsDirectory: URL) throws -> Artifact { fatalError() }
    public static func unpack(_ artifact: URL, to destination: URL) throws {}
}
