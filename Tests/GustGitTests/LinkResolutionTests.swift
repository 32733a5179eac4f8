import Foundation
import GustGit
import GustTesting
import Testing

/// Links in a pushed tree are resolved as the filesystem will resolve them,
/// through the other links of the tree, not judged by their text.
@Suite struct LinkResolutionTests {
    /// Commits `links` (path → destination) next to a file and exports the commit.
    func export(_ links: [(String, String)], limits: ExportLimits = ExportLimits()) throws -> URL {
        let work = try GitWorkspace(at: ScratchDirectory.current.appendingPathComponent("work"))
        try work.write("main.py", "print('hi')\n")
        try work.write("a/b/c/keep.txt", "keep\n")
        for (path, destination) in links {
            let url = work.directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: url.path, withDestinationPath: destination)
        }
        let commit = try work.commit("links")
        let out = ScratchDirectory.current.appendingPathComponent("home/releases/cats/v1")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        _ = try GitRepository(path: work.directory.path).export(commit: commit, to: out, limits: limits)
        return out
    }

    /// The repro: each link's text stays inside; together they reach GUST_HOME/gust.sqlite.
    @Test(.scratchDirectory) func linkThroughAnEscapingDirectoryLinkIsRefused() throws {
        let error = #expect(throws: GitError.self) {
            try export([("a/b/c/l", "../../.."), ("db", "a/b/c/l/../../../gust.sqlite")])
        }
        #expect(error?.message.contains("symlink") == true && error?.message.contains("outside the repository") == true, "\(String(describing: error))")
        #expect(error?.message.contains("'db' is a symlink to 'a/b/c/l/../../../gust.sqlite'") == true)
    }

    @Test(.scratchDirectory, arguments: [
        // a chain: each hop looks harmless, the last `..` leaves
        [("x", "y"), ("y", "a/b/c/z"), ("a/b/c/z", "../../.."), ("evil", "x/../passwd")],
        // a link to a link to a directory, then `..`: physically above the root
        [("a/b/c/l", "../../.."), ("top", "a/b/c/l"), ("evil", "top/../etc/passwd")],
        // a link to a link that resolves to a directory, then walked up
        [("a/b/deep", "c"), ("a/b/c/p", "../../../a/b/deep"), ("evil", "a/b/c/p/../../../../secret")],
        // a loop
        [("loop1", "loop2"), ("loop2", "loop1")],
    ])
    func chainsAndLinkDirectoriesAreResolved(_ links: [(String, String)]) throws {
        let error = #expect(throws: GitError.self) { try export(links) }
        #expect(error?.message.contains("outside the repository") == true, "\(String(describing: error))")
    }

    @Test(.scratchDirectory) func linksThatStayInsideAreKept() throws {
        let out = try export([
            ("a/b/c/up", "../.."), ("main-link.py", "a/b/c/up/../main.py"), ("keep", "a/b/c/keep.txt"),
            ("chain", "keep"), ("dangling", "no/such/file"),
        ])
        #expect(try String(contentsOf: out.appendingPathComponent("main-link.py"), encoding: .utf8) == "print('hi')\n")
        #expect(try String(contentsOf: out.appendingPathComponent("chain"), encoding: .utf8) == "keep\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: out.appendingPathComponent("dangling").path) == "no/such/file")
    }

    /// Links that stay inside but take millions of steps to resolve refuse the push, at a budget
    /// shared by all of a push's links: 4 KB of `/.` a link, 40 in a chain, named by many directories
    /// (git stores them once however many name them), kept a hook busy for days. Here at a budget
    /// of 100,000 steps, which four directories' chains pass (the default is 2,000,000).
    @Test(.scratchDirectory) func linksTakingMillionsOfStepsToResolveAreRefused() throws {
        let dots = String(repeating: "/.", count: 2000)
        var links: [(String, String)] = []
        for directory in ["d0", "d1", "d2", "d3"] {  // 30,000 steps each
            for index in 1...5 {
                links.append(("\(directory)/l\(index)", index == 5 ? "." + dots : "l\(index + 1)" + dots))
            }
        }
        var limits = ExportLimits()
        limits.maxLinkSteps = 100_000
        let error = #expect(throws: GitError.self) { try export(links, limits: limits) }
        #expect(error?.message.contains("symlinks take more than 100000 steps") == true, "\(String(describing: error))")
    }
}
