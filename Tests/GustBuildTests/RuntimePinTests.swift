import Foundation
import GustBuild
import GustCore
import Testing

/// The runtime pins an app writes (`.python-version`, `runtime.txt`, `engines.node`): what they
/// admit, and that garbage in a pushed file is refused with a message naming it.
struct RuntimePinTests {
    typealias V = NodeVersionRange.Version

    func admits(_ range: String, _ versions: [String]) throws -> [Bool] {
        let parsed = try NodeVersionRange(range)
        return versions.map { parsed.admits(V($0)!) }
    }

    @Test func nodeRangesInTheirCommonForms() throws {
        let versions = ["16.20.2", "18.0.0", "18.19.0", "18.20.4", "20.19.2", "21.0.0", "22.1.0"]
        #expect(try admits("18.x", versions) == [false, true, true, true, false, false, false])
        #expect(try admits("18", versions) == [false, true, true, true, false, false, false])
        #expect(try admits(">=20", versions) == [false, false, false, false, true, true, true])
        #expect(try admits(">= 20", versions) == [false, false, false, false, true, true, true])
        #expect(try admits("^18.19", versions) == [false, false, true, true, false, false, false])
        #expect(try admits("~18.19.0", versions) == [false, false, true, false, false, false, false])
        #expect(try admits("~18", versions) == [false, true, true, true, false, false, false])
        #expect(try admits(">=18 <21", versions) == [false, true, true, true, true, false, false])
        #expect(try admits("18 - 20", versions) == [false, true, true, true, true, false, false])
        #expect(try admits("18.19.0 - 20.19.2", versions) == [false, false, true, true, true, false, false])
        #expect(try admits("^18 || ^22", versions) == [false, true, true, true, false, false, true])
        #expect(try admits("*", versions) == Array(repeating: true, count: versions.count))
        #expect(try admits("", versions) == Array(repeating: true, count: versions.count))
        #expect(try admits("20.19.2", versions) == [false, false, false, false, true, false, false])
        #expect(try admits("v20.19.2", versions) == [false, false, false, false, true, false, false])
        #expect(try admits(">18", versions) == [false, false, false, false, true, true, true])
        #expect(try admits("<=18", versions) == [true, true, true, true, false, false, false])
        #expect(try admits("<18.19", versions) == [true, true, false, false, false, false, false])
        #expect(try admits("20.x.x", versions) == [false, false, false, false, true, false, false])
    }

    @Test func caretBelowOneIsNarrower() throws {
        #expect(try admits("^0.2.3", ["0.2.3", "0.2.9", "0.3.0"]) == [true, true, false])
        #expect(try admits("^0.0.3", ["0.0.3", "0.0.4"]) == [true, false])
        #expect(try admits("^0.x", ["0.9.9", "1.0.0"]) == [true, false])
    }

    @Test func garbageRangesAreRefused() {
        for text in ["banana", "18.x.1", ">=18.a", "1.2.3.4", "^18.0.0-beta.1", "18 - ", String(repeating: "1", count: 300), "18\u{0}", "20 <ü"] {
            #expect(throws: PinError.self, "\(text)") { try NodeVersionRange(text) }
        }
    }

    @Test func pythonPinsAdmitWhatTheyPrefix() throws {
        let pin = try PythonVersionPin("3.11")
        #expect(pin.admits("3.11.2"))
        #expect(!pin.admits("3.13.5"))
        #expect(!pin.admits("3.1.2"))
        #expect(try PythonVersionPin("python-3.11.2").admits("3.11.2"))
        #expect(!(try PythonVersionPin("3.11.2")).admits("3.11.4"))
        #expect(try PythonVersionPin("3").admits("3.13.5"))
        #expect(try PythonVersionPin(fileText: "# pyenv\n\n3.13\n3.11\n", file: ".python-version").description == "3.13")
    }

    @Test func garbagePythonPinsAreRefused() {
        for text in ["system", "pypy3.9", "3.x", "2.7", "3.11.2.1", "", "3..1", "३.११"] {
            #expect(throws: PinError.self, "\(text)") { try PythonVersionPin(text) }
        }
        #expect(throws: PinError(".python-version names no Python version")) { try PythonVersionPin(fileText: "# only\n\n", file: ".python-version") }
    }

    @Test func pinsAreReadFromTheirFilesBoundedAndChecked() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pins-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: dir.appendingPathComponent(name)) }

        #expect(try RuntimePin.read(from: dir, buildpack: "python") == nil)
        try write("runtime.txt", "python-3.11\n")
        #expect(try RuntimePin.read(from: dir, buildpack: "python") == .python(try PythonVersionPin("3.11"), file: "runtime.txt"))
        try write(".python-version", "3.13.5\n")  // preferred over runtime.txt
        #expect(try RuntimePin.read(from: dir, buildpack: "python")?.requested == "3.13.5")
        try write(".python-version", String(repeating: "3", count: RuntimePin.maxFileBytes + 1))
        #expect(throws: PinError(".python-version is larger than 4096 bytes")) { try RuntimePin.read(from: dir, buildpack: "python") }
        try FileManager.default.removeItem(at: dir.appendingPathComponent(".python-version"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(".python-version"), withIntermediateDirectories: false)
        #expect(throws: PinError(".python-version is not a regular file")) { try RuntimePin.read(from: dir, buildpack: "python") }

        #expect(try RuntimePin.read(from: dir, buildpack: "node") == nil)
        try write("package.json", #"{"name": "x", "engines": {"npm": ">=9"}}"#)
        #expect(try RuntimePin.read(from: dir, buildpack: "node") == nil)
        try write("package.json", #"{"engines": {"node": "^18.19"}}"#)
        #expect(try RuntimePin.read(from: dir, buildpack: "node")?.requested == "^18.19")
        try write("package.json", #"{"engines": {"node": 18}}"#)
        #expect(throws: PinError.self) { try RuntimePin.read(from: dir, buildpack: "node") }
        try write("package.json", #"{"engines": {"node": "eighteen"}}"#)
        #expect(throws: PinError.self) { try RuntimePin.read(from: dir, buildpack: "node") }
    }
}

/// Which stack a build picks: pure logic over made-up stacks.
struct StackChoiceTests {
    func stack(_ reference: String, python: String?, node: String?, age: Double = 0) throws -> Stack {
        let parsed = try Stack.Reference(parsing: reference)
        return Stack(reference: parsed, suite: parsed.name, createdAt: Date(timeIntervalSince1970: 1_000_000 + age), python: python, node: node, sizeBytes: 1)
    }

    var stacks: [Stack] {
        get throws {
            [try stack("bookworm@2", python: "3.11.2", node: "18.19.0"), try stack("trixie@1", python: "3.13.5", node: "20.19.2", age: 10)]
        }
    }

    @Test func noStacksIsTheHost() throws {
        #expect(try StackChoice.choose(runtime: .python, pin: .python(try PythonVersionPin("3.9"), file: ".python-version"), stacks: [], defaultName: nil) == nil)
    }

    @Test func withoutAPinTheDefault() throws {
        #expect(try StackChoice.choose(runtime: .python, pin: nil, stacks: try stacks, defaultName: "bookworm")?.reference.description == "bookworm@2")
        #expect(try StackChoice.choose(runtime: .node, pin: nil, stacks: try stacks, defaultName: "trixie")?.reference.description == "trixie@1")
    }

    @Test func aPinTheDefaultSatisfiesKeepsIt() throws {
        let pin = RuntimePin.python(try PythonVersionPin("3"), file: ".python-version")
        #expect(try StackChoice.choose(runtime: .python, pin: pin, stacks: try stacks, defaultName: "bookworm")?.reference.description == "bookworm@2")
    }

    @Test func aPinMovesToTheStackOfferingIt() throws {
        let python = RuntimePin.python(try PythonVersionPin("3.13"), file: ".python-version")
        #expect(try StackChoice.choose(runtime: .python, pin: python, stacks: try stacks, defaultName: "bookworm")?.reference.description == "trixie@1")
        let node = RuntimePin.node(try NodeVersionRange("^18.19"), file: "package.json engines.node")
        #expect(try StackChoice.choose(runtime: .node, pin: node, stacks: try stacks, defaultName: "trixie")?.reference.description == "bookworm@2")
        // Outside the default, the highest version that satisfies.
        let wide = RuntimePin.node(try NodeVersionRange(">=20"), file: "package.json engines.node")
        let more = try stacks + [try stack("sid@1", python: "3.12.1", node: "22.1.0")]
        #expect(try StackChoice.choose(runtime: .node, pin: wide, stacks: more, defaultName: "bookworm")?.reference.description == "sid@1")
    }

    @Test func aPinNobodyOffersNamesWhatIsOffered() throws {
        let pin = RuntimePin.python(try PythonVersionPin("3.9"), file: ".python-version")
        let error = #expect(throws: GustError.self) {
            try StackChoice.choose(runtime: .python, pin: pin, stacks: try stacks, defaultName: "bookworm")
        }
        #expect(error?.message == "Python 3.9 is pinned in .python-version; stacks offer Python 3.11.2 (bookworm@2) and 3.13.5 (trixie@1).")
    }

    @Test func theDefaultIsSetOrTheFirstBuilt() throws {
        let home = GustHome(path: FileManager.default.temporaryDirectory.appendingPathComponent("stacks-\(UUID().uuidString)").path)
        let catalog = StackCatalog(home: home)
        let all = try [stack("trixie@1", python: "3.13.5", node: nil, age: 5), stack("bookworm@1", python: "3.11.2", node: nil, age: 1), stack("bookworm@2", python: "3.11.2", node: nil, age: 9)]
        #expect(catalog.defaultName(among: all) == "bookworm")
        #expect(catalog.defaultName(among: []) == nil)
    }
}
