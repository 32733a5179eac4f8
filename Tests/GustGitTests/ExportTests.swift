import Foundation
import GustGit
import GustTesting
import Testing

@Suite struct ExportTests {
    func repository(_ setup: (GitWorkspace) throws -> Void) throws -> (GitRepository, String) {
        let work = try GitWorkspace(at: ScratchDirectory.current.appendingPathComponent("work"))
        try setup(work)
        let commit = try work.commit("test")
        return (try GitRepository(path: work.directory.path), commit)
    }

    func exportDirectory() throws -> URL {
        let out = ScratchDirectory.current.appendingPathComponent("out-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        return out
    }

    @Test(.scratchDirectory) func exportKeepsContentModesAndInTreeLinks() throws {
        let (repo, commit) = try repository { work in
            try work.write("app/main.py", "print('hi')\n")
            try work.write("bin/run", "#!/bin/sh\necho run\n", executable: true)
            try FileManager.default.createSymbolicLink(atPath: work.directory.appendingPathComponent("app/link.py").path, withDestinationPath: "main.py")
            try FileManager.default.createSymbolicLink(atPath: work.directory.appendingPathComponent("app/up").path, withDestinationPath: "../bin/run")
        }
        let out = try exportDirectory()
        let summary = try repo.export(commit: commit, to: out)
        #expect(summary.files == 2)
        #expect(try String(contentsOf: out.appendingPathComponent("app/main.py"), encoding: .utf8) == "print('hi')\n")
        #expect(FileManager.default.isExecutableFile(atPath: out.appendingPathComponent("bin/run").path))
        #expect(!FileManager.default.isExecutableFile(atPath: out.appendingPathComponent("app/main.py").path))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out.appendingPathComponent("app/link.py").path) == "main.py")
        let time = try repo.commitSummary(commit).time
        let mtime = try FileManager.default.attributesOfItem(atPath: out.appendingPathComponent("app/main.py").path)[.modificationDate] as? Date
        #expect(mtime == time)
    }

    @Test(.scratchDirectory, arguments: ["/etc/passwd", "../../etc/passwd", "sub/../../x"])
    func escapingLinksAreRefusedByName(_ destination: String) throws {
        let (repo, commit) = try repository { work in
            try work.write("ok.txt", "ok\n")
            try FileManager.default.createSymbolicLink(atPath: work.directory.appendingPathComponent("evil").path, withDestinationPath: destination)
        }
        let error = #expect(throws: GitError.self) { try repo.export(commit: commit, to: try exportDirectory()) }
        #expect(error?.message.contains("'evil' is a symlink to '\(destination)'") == true)
    }

    /// A symlink's target is its blob: one of megabytes (a few kilobytes packed, if zeros) is
    /// refused by its size in the object's header, before the blob is read into memory, as a
    /// file over its bound is. No system takes a target past PATH_MAX (4096 bytes with its NUL).
    @Test(.scratchDirectory) func aLinkWhoseTargetIsOverPathMaxIsRefusedBeforeItIsRead() throws {
        let work = try GitWorkspace(at: ScratchDirectory.current.appendingPathComponent("work"))
        try work.write("ok.txt", "ok\n")
        try work.git("add", "-A")
        let made = try Command.run("/bin/sh", ["-c", """
            blob=$(head -c 8388608 /dev/zero | tr '\\0' a | git hash-object -w --stdin)
            git update-index --add --cacheinfo "120000,$blob,huge" && git commit -q -m link && git rev-parse HEAD
            """], in: work.directory, environment: GitWorkspace.environment)
        let commit = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(made.status == 0 && commit.count == 40, "\(made.output)")
        let error = #expect(throws: GitError.self) { try GitRepository(path: work.directory.path).export(commit: commit, to: try exportDirectory()) }
        #expect(error?.message.contains("'huge' is a symlink whose target is 8388608 bytes") == true, "\(String(describing: error))")
    }

    @Test(.scratchDirectory) func submodulesAreRefusedByName() throws {
        let work = try GitWorkspace(at: ScratchDirectory.current.appendingPathComponent("work"))
        try work.write("ok.txt", "ok\n")
        try work.git("add", "-A")
        // A gitlink entry, as `git submodule add` makes; `git add -A` would drop it, so commit directly.
        try work.git("update-index", "--add", "--cacheinfo", "160000,\(String(repeating: "b", count: 40)),vendor/lib")
        try work.git("commit", "-q", "-m", "submodule")
        let repo = try GitRepository(path: work.directory.path)
        let commit = try #require(try repo.resolve(reference: "refs/heads/main"))
        let error = #expect(throws: GitError.self) { try repo.export(commit: commit, to: try exportDirectory()) }
        #expect(error?.message.contains("'vendor/lib' is a git submodule") == true)
    }

    /// Git stores a tree once however often it is named: four levels of trees naming the level below
    /// ten times are a few hundred bytes and 11,110 directories. Directories and links count
    /// toward the export's bound as files do.
    @Test(.scratchDirectory) func aTreeOfTreesNamingEachOtherIsRefusedAtTheEntryBound() throws {
        let work = try GitWorkspace(at: ScratchDirectory.current.appendingPathComponent("work"))
        let made = try Command.run("/bin/sh", ["-c", """
            t=$(git mktree </dev/null)
            for level in 1 2 3 4; do
              t=$(for i in 0 1 2 3 4 5 6 7 8 9; do printf '040000 tree %s\td%s\n' "$t" "$i"; done | git mktree)
            done
            git commit-tree "$t" -m bomb
            """], in: work.directory, environment: GitWorkspace.environment)
        let commit = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(made.status == 0 && commit.count == 40, "\(made.output)")
        var limits = ExportLimits()
        limits.maxEntries = 1000
        let out = try exportDirectory()
        let error = #expect(throws: GitError.self) { try GitRepository(path: work.directory.path).export(commit: commit, to: out, limits: limits) }
        #expect(error?.message.contains("more than 1000 files, directories and links") == true, "\(String(describing: error))")
    }

    @Test(.scratchDirectory) func tagsAndReferences() throws {
        let (repo, commit) = try repository { try $0.write("a", "a\n") }
        #expect(try repo.resolve(reference: "refs/heads/main") == commit)
        #expect(try repo.resolve(reference: "refs/heads/nope") == nil)
        try repo.tag("v1", at: commit, force: false)
        #expect(try repo.tagNames() == ["v1"])
        let listed = try Command.run("git", ["-C", ScratchDirectory.current.appendingPathComponent("work").path, "tag"]).stdout
        #expect(listed == "v1\n")
        #expect(throws: GitError.self) { try repo.commitSummary(String(repeating: "c", count: 40)) }
    }
}
