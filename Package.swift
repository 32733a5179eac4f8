// swift-tools-version:6.2
import PackageDescription

// Small public surfaces and explicit imports, as in hummingbird's own manifest.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "gust",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gust", targets: ["gust"]),
        .executable(name: "gust-receive", targets: ["gust-receive"]),
        .executable(name: "gustd", targets: ["gustd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // C bridges: Debian's -dev packages through pkg-config.
        .systemLibrary(
            name: "CGit2", pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .systemLibrary(
            name: "CArchive", pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),

        // pipe2, posix_spawn's closefrom, close_range, the confined fork of gust_spawn: Linux calls the Glibc overlay leaves out.
        .target(name: "CGustSystem"),

        // Names, the home layout and the store: what every other part agrees on.
        .target(
            name: "GustCore",
            dependencies: [
                "CSQLite",
                "CGustSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // libgit2: open a (quarantined) repository, export a tree, tag a commit.
        .target(name: "GustGit", dependencies: ["CGit2"], swiftSettings: swiftSettings),
        // Buildpacks, artifacts (libarchive) and the receive pipeline of a push.
        .target(
            name: "GustBuild",
            dependencies: [
                "GustCore", "GustGit", "CArchive", "CGustSystem",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The web console's pages, sessions, CSRF and templates; gustd gives it a `ConsoleBackend`.
        .target(
            name: "GustConsole",
            dependencies: [
                "GustCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        // gustd's services: admin API, routing, instances, reconciliation.
        .target(
            name: "GustDaemon",
            dependencies: [
                "GustCore", "GustBuild", "GustGit", "CGustSystem", "GustConsole",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        // Kubernetes and Knative manifests of a release: a pure generator and its YAML emitter.
        .target(name: "GustManifests", dependencies: ["GustCore"], swiftSettings: swiftSettings),
        // The commands of `gust`.
        .target(
            name: "GustCLI",
            dependencies: [
                "GustCore", "GustBuild", "GustManifests", "GustGit", "CGustSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "gust",
            dependencies: ["GustCLI", "GustCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gust-receive",
            dependencies: ["GustBuild", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gustd",
            dependencies: [
                "GustDaemon", "GustCore", "GustBuild",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Shared helpers for tests: scratch directories, running the built binaries (spawned with CGustSystem's gust_spawn), git.
        .target(
            name: "GustTesting",
            dependencies: ["GustCore", "CGustSystem"],
            path: "Tests/GustTesting",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "GustCoreTests", dependencies: ["GustCore", "GustTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "GustGitTests", dependencies: ["GustGit", "GustTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "GustBuildTests", dependencies: ["GustBuild", "GustTesting"], swiftSettings: swiftSettings),
        // The manifests' generator, and its output checked by kubernetes-validate and Knative's CRD schema.
        .testTarget(
            name: "GustManifestsTests", dependencies: ["GustManifests", "GustCore", "GustTesting"],
            exclude: ["Data"], swiftSettings: swiftSettings
        ),
        // gustd's logic without processes: the pool's state machine with a fake clock, how a request's path is read.
        .testTarget(
            name: "GustDaemonTests",
            dependencies: [
                "GustDaemon", "GustCore", "GustBuild", "GustConsole", "GustTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["GustCore", "GustBuild", "GustTesting"], swiftSettings: swiftSettings),
        // A real sshd and the real ssh and git clients against `gust ssh-command`.
        .testTarget(name: "SSHTests", dependencies: ["GustCore", "GustCLI", "GustTesting"], swiftSettings: swiftSettings),
    ]
)
