import Foundation
import GustCore
import GustTesting
import Testing

@testable import GustCLI

/// How `SSH_ORIGINAL_COMMAND` is split and understood, without sshd.
@Suite struct SSHRequestTests {
    @Test func wordsAndQuotes() throws {
        #expect(try SSHCommandLine.words("") == [String]())
        #expect(try SSHCommandLine.words("  releases\tcats  ") == ["releases", "cats"])
        #expect(try SSHCommandLine.words("git-receive-pack 'cats.git'") == ["git-receive-pack", "cats.git"])
        #expect(try SSHCommandLine.words("config set cats \"GREETING=hello world\" ''") == ["config", "set", "cats", "GREETING=hello world", ""])
        #expect(try SSHCommandLine.words("a'b'\"c\"") == ["abc"])
    }

    @Test(arguments: [
        "ls; rm -rf /", "a | b", "a && b", "a & b", "echo $HOME", "echo `id`", "a\\ b", "a < b", "a > b", "a\nb", "a\rb",
        "'quoted ; still refused'", "unterminated 'quote", "unterminated \"quote", "bell\u{07}", "del\u{7F}",
    ])
    func shellSyntaxIsRefused(_ text: String) {
        #expect(throws: SSHRefusal.self) { try SSHCommandLine.words(text) }
    }

    @Test func gitPathsBecomeAppNames() throws {
        for path in ["cats.git", "/cats.git", "~/cats.git", "cats", "/cats"] {
            #expect(try SSHRequest.parse(["git-receive-pack", path]) == .git(.receivePack, try AppName("cats")), "\(path)")
        }
        #expect(try SSHRequest.parse(["git-upload-pack", "cats.git"]) == .git(.uploadPack, try AppName("cats")))
        for path in ["../x.git", "../../etc", "a/b.git", "/etc/passwd", "Cats.git", "~root/cats.git", "//cats.git", ".git", ""] {
            #expect(throws: SSHRefusal.self, "\(path)") { try SSHRequest.parse(["git-receive-pack", path]) }
        }
        #expect(throws: SSHRefusal.self) { try SSHRequest.parse(["git-receive-pack", "cats.git", "extra"]) }
        #expect(throws: SSHRefusal.self) { try SSHRequest.parse(["git-upload-archive", "cats.git"]) }
    }

    @Test func onlyGustCommandsAndNoHome() throws {
        #expect(try SSHRequest.parse([]) == .help)
        #expect(try SSHRequest.parse(["help"]) == .help)
        #expect(try SSHRequest.parse(["releases", "cats"]) == .gust(["releases", "cats"]))
        for words in [["bash"], ["scp", "-t", "/"], ["ssh-command", "x"], ["releases", "--home", "/x", "cats"], ["releases", "--home=/x"], ["apps", "--"]] {
            #expect(throws: SSHRefusal.self, "\(words)") { try SSHRequest.parse(words) }
        }
    }

    /// Every key's every request adds a line, refused ones too: past `SSHLog.maxBytes` the log moves
    /// to `.1` and begins again, so the files stay under twice the bound on the disk all apps share.
    @Test(.scratchDirectory) func theSSHLogIsBounded() throws {
        let home = GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path)
        try home.prepare()
        let log = SSHLog(home: home, key: "bob", command: "releases " + String(repeating: "x", count: 290))
        let lineBytes = 400
        for _ in 0..<(Int(SSHLog.maxBytes) / lineBytes * 3) { log.write("refused", reason: "does not parse") }
        let names = try FileManager.default.contentsOfDirectory(atPath: home.logs.path).filter { $0.hasPrefix(SSHLog.fileName) }
        #expect(Set(names) == [SSHLog.fileName, SSHLog.fileName + ".1"])
        let total = try names.reduce(0) { sum, name in
            sum + ((try FileManager.default.attributesOfItem(atPath: home.logs.appendingPathComponent(name).path)[.size] as? Int) ?? 0)
        }
        #expect(total <= 2 * Int(SSHLog.maxBytes) + 1024, "\(total) bytes")
    }
}
