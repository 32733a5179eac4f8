import Foundation

/// What a process holds open, read from `/proc/PID/fd` (tests run as root, so
/// any process's list is readable), or parsed from `ls -l /proc/self/fd` that
/// a process wrote: descriptor number → what it points at (`socket:[123]`,
/// `pipe:[456]`, a path).
struct OpenDescriptors: CustomStringConvertible {
    var targets: [Int: String]

    init(targets: [Int: String]) { self.targets = targets }

    /// The descriptors of a running process.
    init(pid: Int32) {
        let directory = "/proc/\(pid)/fd"
        var targets: [Int: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let fd = Int(name), let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(name)") else { continue }
            targets[fd] = target
        }
        self.init(targets: targets)
    }

    /// Lines of `ls -l /proc/self/fd`: `lrwx------ 1 root root 64 Dec  1 14:50 3 -> socket:[123]`.
    init(listing: String) {
        var targets: [Int: String] = [:]
        for line in listing.split(separator: "\n") {
            guard let arrow = line.range(of: " -> "), let fd = line[..<arrow.lowerBound].split(separator: " ").last.flatMap({ Int($0) }) else { continue }
            targets[fd] = String(line[arrow.upperBound...])
        }
        self.init(targets: targets)
    }

    /// Descriptors other than stdin, stdout and stderr.
    var beyondStandard: [Int: String] { targets.filter { $0.key > 2 } }

    /// Sockets and pipes are unique by inode: the same `socket:[N]` in two
    /// processes is one socket both hold.
    var socketsAndPipes: Set<String> {
        Set(targets.values.filter { $0.hasPrefix("socket:[") || $0.hasPrefix("pipe:[") })
    }

    var description: String {
        targets.keys.sorted().map { "\($0) -> \(targets[$0]!)" }.joined(separator: "\n")
    }
}
