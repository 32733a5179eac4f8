import Synchronization

/// The `X-Request-Id` of a call: the client's own, if it is a sane one (1 to
/// 128 characters of letters, digits and `-_.:@+=/`, so it is safe in a log
/// line and in any header), else one gustd makes. It reaches the function,
/// comes back on the answer and names the call in the access log.
enum RequestID {
    static let maxLength = 128

    /// The client's id if it is sane, else a new one.
    static func of(sent: String?) -> String {
        if let sent, isSane(sent) { return sent }
        return make()
    }

    static func isSane(_ id: String) -> Bool {
        let bytes = id.utf8
        guard !bytes.isEmpty, bytes.count <= maxLength else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "@"),
                UInt8(ascii: "+"), UInt8(ascii: "="), UInt8(ascii: "/"): true
            default: false
            }
        }
    }

    /// This gustd's random prefix and a counter: unique per gustd run, and
    /// made without a system call (a call's cost matters, docs/benchmarks.md).
    static func make() -> String {
        make(count: counter.add(1, ordering: .relaxed).newValue)
    }

    /// `prefix` and `count` in lower-case hex, written into the string's own storage (one
    /// allocation: concatenating two strings made three).
    static func make(count: UInt64) -> String {
        let digits = max(1, (64 - count.leadingZeroBitCount + 3) / 4)
        return String(unsafeUninitializedCapacity: prefix.count + digits) { buffer in
            for (index, byte) in prefix.enumerated() { buffer[index] = byte }
            var rest = count
            for index in (prefix.count..<prefix.count + digits).reversed() {
                buffer[index] = HexDigits.lower[Int(rest & 0xF)]
                rest >>= 4
            }
            return prefix.count + digits
        }
    }

    /// 16 random hex digits and a `-`.
    private static let prefix: [UInt8] = {
        var random = SystemRandomNumberGenerator()
        let bits = String(random.next() as UInt64, radix: 16)
        return Array((String(repeating: "0", count: 16 - bits.count) + bits + "-").utf8)
    }()
    private static let counter = Atomic<UInt64>(0)
}
