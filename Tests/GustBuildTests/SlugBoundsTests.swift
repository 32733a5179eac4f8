import Foundation
import GustCore
import GustTesting
import Testing

@testable import GustBuild

/// What a slug may hold before gustd packs it: its bytes as unpacked, every link to a file a copy
/// of its data, and its entries and their paths, which gustd lists in memory to pack them.
@Suite struct SlugBoundsTests {
    func build(disk: Int?) throws -> Build {
        var build = Build(
            app: try AppName("cats"), commit: "0", home: GustHome(path: ScratchDirectory.current.appendingPathComponent("home").path),
            buildpacks: [], config: [:], settings: BuildSettings(), reporter: BuildReporter(sink: { _ in })
        )
        build.cacheLimit = disk
        return build
    }

    @Test(.scratchDirectory) func aSparseFileLinkedOverAndOverIsMeasuredOncePerLink() async throws {
        let slug = ScratchDirectory.current.appendingPathComponent("slug")
        try FileManager.default.createDirectory(at: slug, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: slug.path + "/z", contents: nil))
        #expect(truncate(slug.path + "/z", 8 << 20) == 0)
        try await build(disk: 20 << 20).checkSlug(slug)
        for index in 0..<10 { #expect(link(slug.path + "/z", slug.path + "/z\(index)") == 0) }
        let error = await #expect(throws: GustError.self) { try await build(disk: 20 << 20).checkSlug(slug) }
        #expect(error?.message.contains("over cats's disk limit (20 MB)") == true, "\(String(describing: error))")
    }

    @Test(.scratchDirectory) func aSlugOfMoreEntriesThanGustdListsIsRefusedWhateverItsSize() async throws {
        let slug = ScratchDirectory.current.appendingPathComponent("slug")
        try FileManager.default.createDirectory(at: slug, withIntermediateDirectories: true)
        let long = String(repeating: "n", count: 250)
        var deep = slug
        for _ in 0..<13 { deep.appendPathComponent(long) }
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: deep.path + "/s", contents: nil))
        try await build(disk: nil).checkSlug(slug)
        // Links to one empty file, each under a 3 KB path: next to nothing on the disk.
        for index in 0..<(Build.maxSlugPathBytes / 3000) {
            #expect(link(deep.path + "/s", deep.path + "/\(index)") == 0)
        }
        let error = await #expect(throws: GustError.self) { try await build(disk: nil).checkSlug(slug) }
        #expect(error?.message.contains("over what a slug may") == true, "\(String(describing: error))")
    }
}
