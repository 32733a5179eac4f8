public import Foundation

/// The runtime version an app asks for, in the files Heroku's buildpacks read: `.python-version`
/// or `runtime.txt` (`3.11`, `3.11.2`, `python-3.13`) for Python, `engines.node` in package.json
/// (an npm range) for Node. These are pushed files, so hostile: read bounded, regular files only,
/// and anything that is not a version is refused with a message naming the file.
public enum RuntimePin: Sendable, Equatable {
    case python(PythonVersionPin, file: String)
    case node(NodeVersionRange, file: String)

    /// The most of a pin file read; a larger one is refused.
    public static let maxFileBytes = 4096
    /// package.json is read whole by the Node buildpack too; past this it is refused here.
    public static let maxPackageJSONBytes = 1 << 20

    /// The runtime this pin is about, as stacks name it.
    public var runtime: StackRuntime {
        switch self {
        case .python: .python
        case .node: .node
        }
    }

    public var file: String {
        switch self {
        case .python(_, let file), .node(_, let file): file
        }
    }

    /// What the app wrote, as it should be quoted back ("3.9", "^18.19").
    public var requested: String {
        switch self {
        case .python(let pin, _): pin.description
        case .node(let range, _): range.description
        }
    }

    /// The pin of the app in `source` for `buildpack` ("python", "node"); nil when it pins nothing.
    public static func read(from source: URL, buildpack: String) throws(PinError) -> RuntimePin? {
        switch buildpack {
        case "python":
            for file in [".python-version", "runtime.txt"] {
                guard let text = try contents(of: source.appendingPathComponent(file), named: file, limit: maxFileBytes) else { continue }
                return .python(try PythonVersionPin(fileText: text, file: file), file: file)
            }
            return nil
        case "node":
            guard let data = try contents(of: source.appendingPathComponent("package.json"), named: "package.json", limit: maxPackageJSONBytes)
            else { return nil }
            guard let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else { return nil }  // the buildpack says why
            guard let engines = object["engines"] else { return nil }
            guard let engines = engines as? [String: Any] else { throw PinError("package.json: \"engines\" is not an object") }
            guard let node = engines["node"] else { return nil }
            guard let text = node as? String else { throw PinError("package.json: engines.node is not a string (write a range such as \"20.x\")") }
            do { return .node(try NodeVersionRange(text), file: "package.json engines.node") } catch {
                throw PinError("package.json engines.node \(error.message)")
            }
        default:
            return nil
        }
    }

    /// The file's text; nil when it does not exist. A directory, a device or an oversized file is refused.
    private static func contents(of url: URL, named name: String, limit: Int) throws(PinError) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path) else { return nil }
        // The export resolved links inside the tree; what is left must be a plain file.
        guard attributes[.type] as? FileAttributeType == .typeRegular else { throw PinError("\(name) is not a regular file") }
        guard let size = attributes[.size] as? Int, size <= limit else { throw PinError("\(name) is larger than \(limit) bytes") }
        guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else {
            throw PinError("\(name) is not UTF-8 text")
        }
        return text
    }
}

/// A Python version pin: "3", "3.11" or "3.11.2"; a shorter pin admits every version it prefixes.
public struct PythonVersionPin: Sendable, Equatable, CustomStringConvertible {
    public let parts: [Int]

    public init(_ text: String) throws(PinError) {
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        if body.lowercased().hasPrefix("python-") { body = body.dropFirst("python-".count) }
        let pieces = body.split(separator: ".", omittingEmptySubsequences: false)
        let numbers = pieces.compactMap { piece in piece.allSatisfy(\.isASCII) && piece.count <= 6 ? Int(piece) : nil }
        guard (1...3).contains(pieces.count), numbers.count == pieces.count, numbers.allSatisfy({ $0 >= 0 }) else {
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            throw PinError("\"\(shown)\" is not a Python version (write one such as 3.11 or 3.11.2)")
        }
        guard numbers[0] == 3 else { throw PinError("Python \(numbers.map(String.init).joined(separator: ".")) is not Python 3") }
        parts = numbers
    }

    /// A file's pin: its first line that is neither blank nor a comment (pyenv's format).
    public init(fileText: String, file: String) throws(PinError) {
        let lines = fileText.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let line = lines.first(where: { !$0.isEmpty && !$0.hasPrefix("#") }) else { throw PinError("\(file) names no Python version") }
        do { try self.init(line) } catch { throw PinError("\(file): \(error.message)") }
    }

    /// Whether `version` ("3.11.2", as a stack records it) is one this pin asks for.
    public func admits(_ version: String) -> Bool {
        let offered = version.split(separator: ".").map { Int($0) }
        guard offered.count >= parts.count else { return false }
        return zip(parts, offered).allSatisfy { $0 == $1 }
    }

    public var description: String { parts.map(String.init).joined(separator: ".") }
}
