#if canImport(Glibc)
import Glibc
#endif

/// One write into a cgroup's control file (`pids.max`, `cgroup.procs`, …): the one place that opens
/// and writes one, for an instance's cgroup (`InstanceCgroup`) and gustd's own (`GustdCgroup`),
/// which each say a failure in their own words.
package enum CgroupFile {
    /// The step that failed and its errno's text.
    package enum Failure: Error, Equatable {
        case open(String)
        case write(String)
    }

    /// Writes `value` into the file at `path`; nil when done.
    package static func write(_ value: String, to path: String) -> Failure? {
        // O_CREAT only matters in a test's fake hierarchy: cgroupfs has every file a controller offers, and makes no others.
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return .open(String(cString: strerror(errno))) }
        defer { close(fd) }
        let written = value.withCString { Glibc.write(fd, $0, strlen($0)) }
        return written >= 0 ? nil : .write(String(cString: strerror(errno)))
    }
}
