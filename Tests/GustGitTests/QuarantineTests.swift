import Foundation
import GustGit
import GustTesting
import Testing

/// While a pre-receive hook runs, the pushed objects exist only in git's
/// quarantine directory; GitRepository must find them there.
@Suite(.timeLimit(.minutes(2)))
struct QuarantineTests {
    @Test(.scratchDirectory) func pushedCommitIsExportableOnlyThroughTheQuarantine() throws {
        let root = ScratchDirectory.current
        let bare = root.appendingPathComponent("bare.git")
        _ = try GitRepository.initBare(at: bare.path)
        let envFile = root.appendingPathComponent("hook-env")
        let doneFile = root.appendingPathComponent("done")
        // The hook records git's environment, then holds the push open until the test is done.
        try """
            #!/bin/sh
            cat > /dev/null
            env | grep -E '^GIT_(QUARANTINE_PATH|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES)=' > '\(envFile.path).tmp'
            mv '\(envFile.path).tmp' '\(envFile.path)'
            i=0; while [ ! -f '\(doneFile.path)' ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i+1)); done
            exit 1
            """.write(to: bare.appendingPathComponent("hooks/pre-receive"), atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bare.appendingPathComponent("hooks/pre-receive").path)

        let work = try GitWorkspace(at: root.appendingPathComponent("work"))
        try work.write("hello.txt", "quarantined\n")
        let commit = try work.commit("pushed")
        let push = try ChildProcess(
            "git", ["-C", work.directory.path, "push", bare.path, "main"],
            environment: ProcessInfo.processInfo.environment.merging(GitWorkspace.environment) { $1 }
        )
        defer {
            _ = FileManager.default.createFile(atPath: doneFile.path, contents: nil)
            push.stop(within: 10)
        }

        // Up to 60 s: CI runs every unit suite at once on two cores, where the machine can stall for 10 s and more.
        var waited = 0
        while !FileManager.default.fileExists(atPath: envFile.path), waited < 600 {
            usleep(100_000)
            waited += 1
        }
        let environment = Dictionary(uniqueKeysWithValues: try String(contentsOf: envFile, encoding: .utf8)
            .split(separator: "\n").compactMap { line -> (String, String)? in
                guard let equals = line.firstIndex(of: "=") else { return nil }
                return (String(line[..<equals]), String(line[line.index(after: equals)...]))
            })
        #expect(environment["GIT_QUARANTINE_PATH"] != nil)

        // Without the quarantine the commit is not there yet...
        let plain = try GitRepository(path: bare.path, environment: [:])
        #expect(throws: GitError.self) { try plain.commitSummary(commit) }
        // ...with it, the whole tree exports.
        let quarantined = try GitRepository(path: bare.path, environment: environment)
        let out = root.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        _ = try quarantined.export(commit: commit, to: out)
        #expect(try String(contentsOf: out.appendingPathComponent("hello.txt"), encoding: .utf8) == "quarantined\n")
    }
}
