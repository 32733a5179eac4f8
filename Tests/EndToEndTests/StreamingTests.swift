import Foundation
import GustCore
import GustTesting
import Testing

/// The build log reaches the pusher while the build runs, not when it ends.
@Suite(.timeLimit(.minutes(20)))
struct StreamingTests {
    /// A share directory whose only buildpack takes a few seconds, printing as it goes.
    func slowShare(in root: URL) throws -> URL {
        let share = root.appendingPathComponent("share")
        let bin = share.appendingPathComponent("buildpacks/python/bin")
        try FileManager.default.createDirectory(at: share.appendingPathComponent("buildpacks"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: GustBinaries.sourceRoot.appendingPathComponent("hooks"), to: share.appendingPathComponent("hooks"))
        // A copy of the real buildpack (its compile runs in the build's sandbox, which sees only its own buildpack).
        try FileManager.default.copyItem(
            at: GustBinaries.sourceRoot.appendingPathComponent("buildpacks/python"), to: share.appendingPathComponent("buildpacks/python"))
        try FileManager.default.moveItem(at: bin.appendingPathComponent("compile"), to: bin.appendingPathComponent("compile-real"))
        let scripts = [
            "detect": "#!/bin/sh\necho Slow\n",
            // Slow, then the real Python compile, so that the release can start.
            "compile": "#!/bin/sh\necho '-----> Working slowly'\nsleep 4\necho '       done'\nexec \"$(dirname \"$0\")/compile-real\" \"$@\"\n",
            "release": "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: .gust/start\\n'\n",
        ]
        for (name, body) in scripts {
            let url = bin.appendingPathComponent(name)
            try body.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
        return share
    }

    @Test(.scratchDirectory) func firstStepArrivesLongBeforeThePushEnds() throws {
        let root = ScratchDirectory.current
        let share = try slowShare(in: root)
        let home = GustHome(path: root.appendingPathComponent("home").path)
        #expect(try GustBinaries.gust(home, ["apps", "create", "slow"], environment: ["GUST_SHARE": share.path]).status == 0)
        let gustd = try GustdProcess(home: home)
        defer { gustd.stop() }
        let work = try GitWorkspace(at: root.appendingPathComponent("work"))
        try work.write("requirements.txt", "\n")
        try work.write("__init__.py", "import gust\n")
        try work.commit("Slow")

        let stderr = try ChildProcess.pipe()
        let started = Date()
        let process: ChildProcess
        do {
            defer { close(stderr.write) }
            process = try ChildProcess(
                "git", ["push", home.repository(try AppName("slow")).path, "main"],
                environment: ProcessInfo.processInfo.environment.merging(GitWorkspace.environment) { $1 }.merging(["GUST_SHARE": share.path]) { $1 },
                directory: work.directory, standardError: stderr.write
            )
        } catch {
            close(stderr.read)
            throw error
        }
        defer { process.stop(within: 10) }

        // Read the pusher's stderr as it arrives and note when the first step line shows up (for up to 10 minutes).
        var firstStep: Date?
        var seen = ""
        let deadline = Date().addingTimeInterval(600)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var ready = pollfd(fd: stderr.read, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 1000) > 0 else { continue }
            let got = read(stderr.read, &buffer, buffer.count)
            if got <= 0 && !(got < 0 && errno == EINTR) { break }
            if got > 0 { seen += String(decoding: buffer[..<got], as: UTF8.self) }
            if firstStep == nil, seen.contains("remote: -----> ") { firstStep = Date() }
        }
        close(stderr.read)
        let termination = process.wait(upTo: 60)
        let ended = Date()

        #expect(termination == .exited(0), "\(seen)")
        let first = try #require(firstStep, "no remote: -----> line in \(seen)")
        // The buildpack sleeps 4 s between its lines; streamed output arrives well before the end.
        #expect(ended.timeIntervalSince(first) > 2.5, "first step at \(first.timeIntervalSince(started)) s, end at \(ended.timeIntervalSince(started)) s")
        #expect(seen.contains("remote: -----> Working slowly"))
    }
}
