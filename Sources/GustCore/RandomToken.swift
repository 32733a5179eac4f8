#if canImport(Glibc)
import Glibc
#endif

/// Random secrets (tokens, per-instance secrets) with one system call each.
///
/// Why: `SystemRandomNumberGenerator` asks the kernel for 8 bytes per
/// `next()`, so a token drawn byte by byte through `UInt8.random(in:using:)`
/// cost a `getrandom` per byte: 64 per instance start for its two secrets.
/// `arc4random_buf` (glibc 2.36 and later) fills the whole buffer from one
/// `getrandom`, the same kernel generator, and never fails.
package enum RandomToken {
    /// `count` random bytes from the kernel's generator.
    package static func bytes(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress, count > 0 { arc4random_buf(base, count) }
            initialized = count
        }
    }

    /// `count` random bytes as lowercase hex (`2 × count` characters of `0-9a-f`).
    package static func hex(bytes count: Int) -> String {
        hex(bytes(count))
    }

    /// `bytes` as lowercase hex, two characters a byte.
    package static func hex(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            for (index, byte) in bytes.enumerated() {
                buffer[2 * index] = digit(byte >> 4)
                buffer[2 * index + 1] = digit(byte & 0x0F)
            }
            return bytes.count * 2
        }
    }

    /// The ASCII hex digit of a nibble (0–15).
    private static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
