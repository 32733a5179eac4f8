import Foundation
import GustManifests
import GustTesting

/// PyYAML (Debian's python3-yaml, a YAML 1.1 reader as wary as kubectl's of
/// `yes`, `no`, `0x1F` and dates) reading our output back.
///
/// Why a real reader: the emitter's own idea of what it wrote proves nothing;
/// what counts is what a YAML library makes of it.
enum RealYAMLReader {
    /// Nil when PyYAML reads `text` as exactly `documents` (types included: `true` is not `1`,
    /// `"8080"` is not `8080`); otherwise what differed, or PyYAML's error.
    static func mismatch(_ text: String, _ documents: [YAMLNode]) throws -> String? {
        let expected = String(decoding: try JSONEncoder().encode(documents.map(JSONView.init)), as: UTF8.self)
        let script = """
            import json, sys, yaml
            def same(a, b):
                if type(a) is not type(b): return False
                if isinstance(a, dict): return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
                if isinstance(a, list): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
                return a == b
            read = list(yaml.safe_load_all(sys.stdin.read()))
            expected = json.loads(sys.argv[1])
            if not same(read, expected):
                print("read:     " + json.dumps(read, sort_keys=True))
                print("expected: " + json.dumps(expected, sort_keys=True))
                sys.exit(1)
            """
        let result = try Command.run("python3", ["-c", script, expected], input: text, timeout: 60)
        return result.status == 0 ? nil : result.output
    }

    /// A node as JSON, for the comparison.
    struct JSONView: Encodable {
        var node: YAMLNode

        init(_ node: YAMLNode) { self.node = node }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch node {
            case .string(let text): try container.encode(text)
            case .int(let number): try container.encode(number)
            case .bool(let value): try container.encode(value)
            case .list(let items): try container.encode(items.map(JSONView.init))
            case .map(let entries):
                try container.encode(Dictionary(entries.map { ($0.key, JSONView($0.value)) }, uniquingKeysWith: { first, _ in first }))
            }
        }
    }
}
