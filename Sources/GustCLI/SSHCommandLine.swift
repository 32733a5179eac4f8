/// Why an SSH request is not carried out: one line for the person at the
/// other end, and the same line in `logs/ssh_access.log`.
struct SSHRefusal: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Splits `SSH_ORIGINAL_COMMAND` into words the way a user means them, without
/// a shell ever seeing it.
///
/// Words are separated by spaces or tabs; single quotes keep their contents
/// literally and double quotes group a word (git sends `git-receive-pack
/// 'cats.git'`). Characters only a shell would give meaning to are refused
/// outright, even inside quotes: no Gust command needs them, and a request that
/// holds them was meant for a shell.
enum SSHCommandLine {
    /// `; | & $ \` \\ < >` and line breaks.
    static let shellCharacters: Set<Unicode.Scalar> = [";", "|", "&", "$", "`", "\\", "<", ">", "\n", "\r"]
    static let maximumLength = 4096

    static func words(_ text: String) throws(SSHRefusal) -> [String] {
        guard text.utf8.count <= maximumLength else {
            throw SSHRefusal("The command is \(text.utf8.count) bytes long; Gust commands fit in \(maximumLength).")
        }
        var words: [String] = []
        var current = String.UnicodeScalarView()
        var inWord = false
        var quote: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            if shellCharacters.contains(scalar) {
                let shown = scalar == "\n" || scalar == "\r" ? "a line break" : "'\(scalar)'"
                throw SSHRefusal("The command holds \(shown): Gust runs no shell, so shell syntax is refused.")
            }
            if scalar.value < 0x20 && scalar != "\t" || scalar.value == 0x7F {
                throw SSHRefusal("The command holds a control character; Gust refuses it.")
            }
            if let open = quote {
                if scalar == open { quote = nil } else { current.append(scalar) }
            } else if scalar == "'" || scalar == "\"" {
                quote = scalar
                inWord = true
            } else if scalar == " " || scalar == "\t" {
                if inWord { words.append(String(current)) }
                current = String.UnicodeScalarView()
                inWord = false
            } else {
                current.append(scalar)
                inWord = true
            }
        }
        guard quote == nil else { throw SSHRefusal("The command has an unterminated \(quote == "'" ? "single" : "double") quote.") }
        if inWord { words.append(String(current)) }
        return words
    }
}
