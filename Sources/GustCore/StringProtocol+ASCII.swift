extension StringProtocol {
    /// Whether every byte is ASCII. The gateway reads such text by bytes, where reading it by
    /// characters would ask Unicode where each grapheme ends: no ASCII character joins a `/`,
    /// `.`, `?` or `:` to the next, so both readings give the same pieces (`RequestPathTests`).
    package var isASCII: Bool { utf8.allSatisfy { $0 < 0x80 } }
}
