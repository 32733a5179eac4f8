extension StringProtocol {
    /// Whether every byte is ASCII. The gateway reads such text by bytes, where reading it by
    /// characters would ask Unicode where each grapheme ends: no ASCII character joins a `/`,
    /// `.`, `?` or `:` to the next, so both readings give the same pieces (`RequestPathTests`).
    ///
    /// Inlinable: every request's target and host are checked here, and a generic left
    /// unspecialized across the module boundary walked them a byte at a time through protocol
    /// witnesses (5 % of a health answer's time in gustd, 2026-12-04).
    @inlinable package var isASCII: Bool {
        if let ascii = utf8.withContiguousStorageIfAvailable({ bytes in bytes.allSatisfy { $0 < 0x80 } }) { return ascii }
        return utf8.allSatisfy { $0 < 0x80 }
    }

    /// The number written here with ASCII digits and points only (`0.5`, `90`), or nil. `Double()`
    /// alone also reads `inf`, `nan`, `1e400` and `0x1p3`: no size, limit, lifetime or timeout a
    /// person writes means those, and some trap where they are turned into an Int or a Duration.
    var plainDecimal: Double? {
        guard !isEmpty, utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ".") }) else { return nil }
        return Double(String(self))
    }
}
