extension String {
    /// At most `limit` bytes of UTF-8 of it, with "…" after what was cut: for messages an app
    /// writes that gustd stores, logs or answers with. Cut by scalars, not characters: one
    /// character may hold any number of combining marks.
    public func cut(toUTF8Bytes limit: Int) -> String {
        guard utf8.count > limit else { return self }
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in unicodeScalars {
            bytes += String(scalar).utf8.count
            guard bytes <= limit else { break }
            kept.append(scalar)
        }
        return String(kept) + "…"
    }
}
