import Foundation

/// The seccomp filter of sandboxed code, as bwrap's `--seccomp FD` reads it: a
/// classic BPF program (Docker's default profile, much shortened). It refuses
/// what an app never needs and what widens the kernel's surface: new user
/// namespaces (clone/unshare with CLONE_NEWUSER; `clone3` answers ENOSYS so
/// libc falls back to clone), mounting, keyrings, bpf, perf, userfaultfd,
/// io_uring (ENOSYS: libuv falls back), module and kexec loading, setns, and
/// any other syscall ABI (x32, i386). x86-64 only; elsewhere no filter.
enum SandboxSeccomp {
    /// The program's bytes, nil on architectures it does not know.
    static var program: [UInt8]? {
        #if arch(x86_64)
        return assemble(x86_64)
        #else
        return nil
        #endif
    }

    struct Denied {
        var number: UInt32
        var errno: UInt32
    }

    static let eperm: UInt32 = 1, enosys: UInt32 = 38
    static let x86_64: [Denied] = [
        (155, eperm), (163, eperm), (165, eperm), (166, eperm), (167, eperm), (168, eperm), (169, eperm),  // pivot_root acct mount umount2 swapon swapoff reboot
        (172, eperm), (173, eperm), (175, eperm), (176, eperm), (246, eperm), (248, eperm), (249, eperm), (250, eperm),  // iopl ioperm init/delete_module kexec_load add_key request_key keyctl
        (298, eperm), (304, eperm), (308, eperm), (313, eperm), (320, eperm), (321, eperm), (323, eperm),  // perf_event_open open_by_handle_at setns finit_module kexec_file_load bpf userfaultfd
        (425, enosys), (428, eperm), (429, eperm), (430, eperm), (432, eperm), (435, enosys),  // io_uring_setup open_tree move_mount fsopen fsmount clone3
    ].map { Denied(number: $0.0, errno: $0.1) }

    static let auditArchX86_64: UInt32 = 0xC000_003E
    static let cloneNewUser: UInt32 = 0x1000_0000
    static let allow: UInt32 = 0x7fff_0000
    static func error(_ number: UInt32) -> UInt32 { 0x0005_0000 | number }

    /// ld [offset]; jeq/jge/jset k; ret k. `seccomp_data`: nr at 0, arch at 4, args from 16.
    static func assemble(_ denied: [Denied]) -> [UInt8] {
        var code: [(UInt16, UInt8, UInt8, UInt32)] = [
            (0x20, 0, 0, 4),  // ld arch
            (0x15, 1, 0, auditArchX86_64),  // jeq x86_64 → skip the refusal
            (0x06, 0, 0, error(eperm)),
            (0x20, 0, 0, 0),  // ld nr
            (0x35, 0, 1, 0x4000_0000),  // jge x32 bit → refuse
            (0x06, 0, 0, error(eperm)),
        ]
        for entry in denied {
            code.append((0x15, 0, 1, entry.number))
            code.append((0x06, 0, 0, error(entry.errno)))
        }
        code += [
            (0x15, 1, 0, 56),  // clone → check its flags
            (0x15, 0, 3, 272),  // unshare → check its flags, else allow
            (0x20, 0, 0, 16),  // ld args[0] (low half)
            (0x45, 0, 1, cloneNewUser),  // jset CLONE_NEWUSER
            (0x06, 0, 0, error(eperm)),
            (0x06, 0, 0, allow),
        ]
        var bytes: [UInt8] = []
        for (op, jt, jf, k) in code {
            bytes += [UInt8(op & 0xff), UInt8(op >> 8), jt, jf]
            bytes += [UInt8(k & 0xff), UInt8((k >> 8) & 0xff), UInt8((k >> 16) & 0xff), UInt8(k >> 24)]
        }
        return bytes
    }

    /// Writes the program to `directory/seccomp.bpf` (where bwrap's shell opens it) and returns its path.
    static func install(in directory: URL) throws -> String? {
        guard let program else { return nil }
        let file = directory.appendingPathComponent("seccomp.bpf")
        if FileManager.default.contents(atPath: file.path) != Data(program) {
            try Data(program).write(to: file, options: .atomic)
        }
        return file.path
    }
}
