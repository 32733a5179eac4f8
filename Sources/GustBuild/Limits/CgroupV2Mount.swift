import Foundation

/// A cgroup v2 hierarchy's mount as `/proc/self/mountinfo` lists it: where it
/// is and its superblock options (where `favordynmods` is set). One reader of
/// mountinfo for gustd (`CgroupMoves`) and the tests that remount it
/// (`CgroupMovesStepTests`); `scripts/cgroup_mounts.py` is the scripts' twin.
package struct CgroupV2Mount: Equatable, Sendable {
    /// The mount point; mountinfo escapes a space in it as \040, left so.
    package var target: String
    /// The superblock's options (`rw,nsdelegate,favordynmods`), not the mount's own.
    package var options: [String]

    package init(target: String, options: [String]) {
        self.target = target
        self.options = options
    }

    /// The cgroup v2 mounts in mountinfo's lines, in order:
    /// `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS…] - TYPE SOURCE SUPER_OPTIONS`.
    package static func all(mountinfo: String) -> [CgroupV2Mount] {
        mountinfo.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let separator = fields.firstIndex(of: "-"), separator >= 5, fields.count > separator + 3,
                fields[separator + 1] == "cgroup2"
            else { return nil }
            return CgroupV2Mount(target: String(fields[4]), options: fields[separator + 3].split(separator: ",").map(String.init))
        }
    }

    /// This process's view of the host's cgroup v2 mounts (none if mountinfo cannot be read).
    package static func current() -> [CgroupV2Mount] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return all(mountinfo: text)
    }

    package var favorsDynamicModifications: Bool { options.contains("favordynmods") }
}
