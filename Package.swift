// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "evindex",
    products: [
        .executable(name: "evindex", targets: ["EvindexCLI"]),
        // The engine for embedding: index, query and replay without the CLI.
        .library(
            name: "EvindexEngine",
            targets: ["Indexing", "History", "JSONFormat", "Search", "Projections", "EventStore", "Events", "Traversal", "Rules"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        // A damaged file's bad read ends a command with one line, not SIGBUS (LMDB maps it).
        .target(name: "CMapGuard"),
        .target(name: "LMDB", dependencies: ["CLMDB", "CMapGuard"]),
        // CRC-32C with the CPU's instruction where there is one (the log's checksums).
        .target(name: "CChecksum"),
        .target(name: "Events", dependencies: ["CChecksum"]),
        .target(name: "EventStore", dependencies: ["LMDB", "Events"]),
        // System calls glibc hides from Swift (getdents64), for the walker's hot path.
        .target(name: "CLinux"),
        // Which entries a run indexes: globs, child-directory rules, git's ignore files.
        .target(name: "Rules"),
        .target(name: "Traversal", dependencies: ["CLinux", "Rules"]),
        .target(name: "Projections", dependencies: ["EventStore", "LMDB", "Events"]),
        .target(name: "Indexing", dependencies: ["EventStore", "Projections", "Traversal", "Rules", "Events", "LMDB"]),
        // The records as JSON: every command's --json objects, export and import (and the
        // web page's API): one writer, one reader, paths as exact bytes.
        .target(name: "JSONFormat", dependencies: ["History", "Projections", "EventStore", "Events", "Traversal"]),
        // Questions about names, sizes and times, answered from the index (`find`).
        .target(name: "Search", dependencies: ["Projections", "Events", "Rules", "CLinux"]),
        // Reading the past: the index a run learned, diffs of two runs, export and import.
        .target(name: "History", dependencies: ["EventStore", "Projections", "Events", "LMDB"]),
        .executableTarget(
            name: "EvindexCLI",
            dependencies: [
                "Indexing", "History", "JSONFormat", "Search", "Projections", "EventStore", "Events", "Traversal", "Rules",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Tests by layer, over one target of shared helpers (the find oracle, the
        // temporary directories, the filesystem doubles, the built binary's path).
        .target(name: "TestSupport", dependencies: ["Events", "EventStore", "LMDB", "Traversal"], path: "Tests/TestSupport"),
        .testTarget(name: "EventsTests", dependencies: ["TestSupport", "Events"]),
        .testTarget(name: "StoreTests", dependencies: ["TestSupport", "EventStore", "Events", "LMDB", "Projections", "Indexing", "Traversal"]),
        .testTarget(name: "RulesTests", dependencies: ["TestSupport", "Rules", "Indexing", "Traversal"]),
        .testTarget(
            name: "EngineTests",
            dependencies: ["TestSupport", "Indexing", "History", "EventStore", "Projections", "Events", "Traversal", "Rules", "LMDB"]
        ),
        // Through the built binary, as a user runs it (EvindexCLI is built for them).
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "TestSupport", "EvindexCLI", "Indexing", "History", "Search", "EventStore", "Projections", "Events", "Traversal", "JSONFormat",
            ]
        ),
    ]
)

// `make check` sets EVINDEX_WARNINGS_AS_ERRORS=1: this package's targets (not its
// dependencies') then fail on any warning. Unset, the manifest has no unsafe flags, so the
// library product can be a version-based dependency; the release binary's speed flags
// (-enforce-exclusivity=unchecked, -cross-module-optimization) are the Makefile's
// (Docs/PERFORMANCE.md).
let warningsAsErrors = Context.environment["EVINDEX_WARNINGS_AS_ERRORS"] == "1"

// Strictness in one place: every target gets the same language mode and flags.
for target in package.targets where target.type != .system && !["CLinux", "CChecksum", "CMapGuard"].contains(target.name) {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    if warningsAsErrors { settings.append(.unsafeFlags(["-warnings-as-errors"])) }
    target.swiftSettings = settings
}
