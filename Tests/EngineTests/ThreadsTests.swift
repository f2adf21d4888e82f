import EventStore
import Foundation
import Indexing
import LMDB
import Rules
import Synchronization
import TestSupport
import Testing
import Traversal

/// `--threads`: listers read ahead of the walk, and the walk still hands listings over in
/// depth-first order, so any thread count writes the same events and the same views.
@Suite(.serialized)
struct ThreadsTests {
    /// The log without its wall-clock times, and the views as `ls -R` and `du` print them.
    static func outcome(_ root: String, _ db: String) throws -> (log: String, ls: Data, du: Data) {
        let log = try Support.evindex(["log", "--json", "--db", db])
        #expect(log.status == 0, "\(log.stderr)")
        let stripped = log.text.replacingOccurrences(of: #""time_ms":[0-9]+,"#, with: "", options: .regularExpression)
        let ls = try Support.evindex(["ls", root, "-R", "--json", "--db", db])
        let du = try Support.evindex(["du", root, "--depth", "1000", "--json", "--db", db])
        return (stripped, ls.stdout, du.stdout)
    }

    /// Each outcome equals the first: the same log (times aside), `ls -R` and `du`.
    static func expectSame(
        _ outcomes: [(log: String, ls: Data, du: Data)], _ labels: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for i in outcomes.indices.dropFirst() {
            let which = "\(labels[0]) and \(labels[i])"
            #expect(outcomes[i].log == outcomes[0].log, "the log differs between \(which)", sourceLocation: sourceLocation)
            #expect(outcomes[i].ls == outcomes[0].ls, "ls -R differs between \(which)", sourceLocation: sourceLocation)
            #expect(outcomes[i].du == outcomes[0].du, "du differs between \(which)", sourceLocation: sourceLocation)
        }
    }

    /// In-process runs of `root` through `fileSystem`, one per thread count, each into its
    /// own database under `tmp`: their summaries and outcomes.
    static func runs<FS: FileSystem>(_ root: String, _ tmp: String, threads: [Int], fileSystem: FS, rules: RuleSet = RuleSet())
        throws -> [(summary: RunSummary, outcome: (log: String, ls: Data, du: Data))]
    {
        try threads.map { n in
            let db = tmp + "/db\(n)"
            var options = RunOptions(root: Array(root.utf8), databaseDirectory: db)
            options.threads = n
            options.rules = rules
            let summary = try IndexJob.run(options, fileSystem: fileSystem)
            return (summary, try outcome(root, db))
        }
    }

    /// A first index and a rescan after `mktree --mutate`, with rules: `--threads 1`, 2
    /// and 4 write byte-identical logs (times aside) and views, and each database equals a
    /// replay of its log.
    @Test func anyThreadCountWritesTheSameEventsAndViews() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 30_000, seed: 17)
            let rules = ["--gitignore", "--reject", "*.tmp"]
            var outcomes: [(log: String, ls: Data, du: Data)] = []
            for threads in [1, 2, 4] {
                let db = tmp + "/db\(threads)"
                let r = try Support.evindex(["run", root, "--db", db, "--threads", String(threads)] + rules)
                try #require(r.status == 0, "\(r.stderr)")
                outcomes.append(try Self.outcome(root, db))
            }
            _ = try Checks.mutate(root, 200, seed: 3)
            for (i, threads) in [1, 2, 4].enumerated() {
                let db = tmp + "/db\(threads)"
                let r = try Support.evindex(["run", root, "--db", db, "--threads", String(threads)] + rules)
                try #require(r.status == 0, "\(r.stderr)")
                outcomes[i] = try Self.outcome(root, db)
                let verify = try Support.evindex(["verify", "--db", db])
                #expect(verify.status == 0, "threads \(threads): \(verify.text) \(verify.stderr)")
            }
            #expect(outcomes[0].log.count > 100_000)
            Self.expectSame(outcomes, ["--threads 1", "--threads 2", "--threads 4"])
        }
    }

    /// Errors injected through the filesystem capability (a directory that cannot be
    /// opened, one whose read fails part-way) are the same events for any thread count.
    @Test func faultsGiveTheSameEventsForAnyThreadCount() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 20_000, seed: 9)
            let fs = FaultyFileSystem(faults: ["open:awkward": .permissionDenied, "read:Media": .ioError])
            let runs = try Self.runs(root, tmp, threads: [1, 3], fileSystem: fs)
            for run in runs { #expect(run.summary.counts.errors == 2, "\(run.summary.counts.errors) errors") }
            #expect(runs[1].outcome.log == runs[0].outcome.log)
            #expect(runs[1].outcome.ls == runs[0].outcome.ls)
        }
    }

    /// Under a low descriptor limit, lister threads read ahead less instead of running out
    /// of descriptors: the same index as one thread, no errors.
    @Test func lowDescriptorLimitGivesTheSameIndex() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            for i in 0..<1500 {
                let dir = root + "/d\(i)"
                try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
                try "*.log\n".write(toFile: dir + "/.gitignore", atomically: false, encoding: .utf8)
                _ = FileManager.default.createFile(atPath: dir + "/a.log", contents: Data())
                _ = FileManager.default.createFile(atPath: dir + "/sub/b.log", contents: Data())
            }
            try FileManager.default.createDirectory(atPath: root + "/.git/objects", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/.git/refs", withIntermediateDirectories: true)
            try "ref: refs/heads/main\n".write(toFile: root + "/.git/HEAD", atomically: false, encoding: .utf8)
            var outcomes: [(log: String, ls: Data, du: Data)] = []
            for threads in ["1", "3"] {
                let db = tmp + "/db" + threads
                let r = try Support.run([
                    "/usr/bin/prlimit", "--nofile=200:200", Support.evindex, "run", root, "--gitignore",
                    "--threads", threads, "--db", db, "--json",
                ])
                #expect(r.status == 0, "\(r.stderr)")
                let summary = try Support.objects(r.stdout).first
                #expect(summary?["errors"] as? Int == 0, "threads \(threads): \(summary ?? [:])")
                outcomes.append(try Self.outcome(root, db))
            }
            #expect(outcomes[0].log == outcomes[1].log)
            #expect(outcomes[0].ls == outcomes[1].ls)
            #expect(!String(decoding: outcomes[0].ls, as: UTF8.self).contains(".log\""))
        }
    }

    @Test func badThreadCountsAreRefused() throws {
        try Support.withTemporaryDirectory { tmp in
            for bad in ["0", "-1", "1000"] {
                let r = try Support.evindex(["run", tmp, "--db", tmp + "/db", "--threads", bad])
                #expect(r.status == 2, "--threads \(bad)")
                #expect(!FileManager.default.fileExists(atPath: tmp + "/db"))
            }
        }
    }
}

/// Counts descriptors opened and closed, passing everything through.
final class DescriptorCountingFileSystem: PassThroughFileSystem {
    let real = PosixFileSystem()
    let opened = Atomic<Int>(0)
    let closed = Atomic<Int>(0)
    func openRoot(_ path: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        let h = try real.openRoot(path)
        opened.add(1, ordering: .relaxed)
        return h
    }
    func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        let h = try real.openDirectory(parent, name)
        opened.add(1, ordering: .relaxed)
        return h
    }
    func close(_ directory: DirectoryHandle) {
        closed.add(1, ordering: .relaxed)
        real.close(directory)
    }
}

/// Enters every directory except those whose name starts with "a" or "m" (their subtrees,
/// which listers may already have read ahead, are cancelled); records the paths it was
/// handed, and can stop after a number of listings.
struct PruningDelegate: WalkDelegate {
    var paths: [UInt64: [UInt8]] = [:]
    var listed: [[UInt8]] = []
    var nextID: UInt64 = 2
    var stopAfter = Int.max

    init(root: String) { paths[1] = Array(root.utf8) }

    mutating func directoryListed(_ listing: inout DirectoryListing) throws {
        let path = paths[listing.directoryID]!
        listed.append(path)
        for i in listing.entries.indices where listing.entries[i].canDescend {
            let e = listing.entries[i]
            let name = Array(listing.names[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
            if name.first == UInt8(ascii: "a") || name.first == UInt8(ascii: "m") { continue }
            listing.entries[i].directoryID = nextID
            paths[nextID] = path + [UInt8(ascii: "/")] + name
            nextID += 1
        }
    }
    mutating func knownListing(of directoryID: UInt64, stat: EntryStat) -> KnownListing? { nil }
    mutating func walkFailed(_ error: WalkError) throws {}
    var shouldStop: Bool { listed.count >= stopAfter }
}

extension ThreadsTests {
    /// Listers read subdirectories ahead before the walk knows whether it enters them: what
    /// the walk skips, and what is read ahead when it stops early, gives back its
    /// descriptors; the directories handed over are exactly `find`'s, pruned the same way.
    @Test func skippedAndUnfinishedReadAheadGivesBackEveryDescriptor() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 20_000, seed: 5)
            let find = try Support.run([
                "/usr/bin/find", root, "-mindepth", "1", "-type", "d", "(", "-name", "a*", "-o", "-name", "m*", ")",
                "-prune", "-o", "-type", "d", "-print0",
            ])
            // NUL-separated bytes: mktree's names hold newlines and invalid UTF-8.
            let expected = Set(find.stdout.split(separator: 0).map { Array($0) } + [Array(root.utf8)])
            #expect(expected.count > 500)
            for threads in [1, 4] {
                let fs = DescriptorCountingFileSystem()
                var delegate = PruningDelegate(root: root)
                let finished = try Walker(fileSystem: fs, threads: threads).walk(root: root, rootID: 1, delegate: &delegate)
                #expect(finished)
                let listed = Set(delegate.listed)
                let same = listed == expected
                #expect(same, "threads \(threads): \(expected.subtracting(listed).count) missing, \(listed.subtracting(expected).count) extra")
                #expect(delegate.listed.count == expected.count, "threads \(threads): a directory handed over twice")
                #expect(fs.opened.load(ordering: .relaxed) == fs.closed.load(ordering: .relaxed), "threads \(threads)")
                #expect(fs.opened.load(ordering: .relaxed) >= expected.count)

                let stopping = DescriptorCountingFileSystem()
                var early = PruningDelegate(root: root)
                early.stopAfter = 300
                let done = try Walker(fileSystem: stopping, threads: threads).walk(root: root, rootID: 1, delegate: &early)
                #expect(!done)
                #expect(early.listed.count == 300)
                #expect(stopping.opened.load(ordering: .relaxed) == stopping.closed.load(ordering: .relaxed), "threads \(threads), stopped")
            }
        }
    }
}

/// A look-ahead that is always wrong: every directory empty, under an id the delegate
/// never gives.
struct LyingLookAhead: IndexLookAhead {
    var next: UInt64 = 1 << 40
    mutating func lookUp(parent: UInt64, name: UnsafeRawBufferPointer, stat: EntryStat) -> (id: UInt64, known: KnownListing?) {
        next += 1
        return (next, KnownListing(names: []))
    }
}

/// Enters every directory and records every entry's path. It wants every directory read
/// (no known names), or, with `recordedListings`, gives every directory (the root too) a
/// recorded listing (as a resumed run does) that lacks the directory's last name.
struct RecordingDelegate: WalkDelegate {
    var paths: [UInt64: [UInt8]] = [:]
    var entries: [[UInt8]] = []
    var nextID: UInt64 = 2
    var recordedListings = false

    init(root: String) { paths[1] = Array(root.utf8) }

    mutating func directoryListed(_ listing: inout DirectoryListing) throws {
        let path = paths[listing.directoryID]!
        for i in listing.entries.indices {
            let e = listing.entries[i]
            let full = path + [UInt8(ascii: "/")] + listing.names[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)]
            entries.append(full)
            guard e.canDescend else { continue }
            listing.entries[i].directoryID = nextID
            paths[nextID] = full
            nextID += 1
        }
    }
    mutating func knownListing(of directoryID: UInt64, stat: EntryStat) -> KnownListing? {
        guard recordedListings else { return nil }
        let path = String(decoding: paths[directoryID]!, as: UTF8.self)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted().dropLast() ?? []
        return KnownListing(names: names.flatMap { Array($0.utf8) + [0] }, isRecorded: true)
    }
    mutating func walkFailed(_ error: WalkError) throws {}
    var shouldStop: Bool { false }
}

extension ThreadsTests {
    /// The delegate has the last word over the listers' look-ahead into the index: where it
    /// wants names read, or gives another id than the look-ahead found, what was read ahead
    /// is read again. A look-ahead that is always wrong changes nothing: every entry `find`
    /// lists is handed over, once.
    @Test func aWrongLookAheadIsOverruledByTheDelegate() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 20_000, seed: 6)
            let find = try Support.run(["/usr/bin/find", root, "-mindepth", "1", "-print0"])
            let expected = find.stdout.split(separator: 0).map { Array($0) }
            #expect(expected.count > 15_000)
            let fs = DescriptorCountingFileSystem()
            var delegate = RecordingDelegate(root: root)
            let walker = Walker(fileSystem: fs, threads: 4, lookAhead: { @Sendable () -> (any IndexLookAhead)? in LyingLookAhead() })
            #expect(try walker.walk(root: root, rootID: 1, delegate: &delegate))
            #expect(delegate.entries.count == expected.count)
            let handed = Set(delegate.entries), found = Set(expected)
            let same = handed == found  // not the sets themselves in a failure: 20,000 paths
            #expect(same, "\(found.subtracting(handed).count) entries missing, \(handed.subtracting(found).count) not in find")
            #expect(fs.opened.load(ordering: .relaxed) == fs.closed.load(ordering: .relaxed))
        }
    }
}

extension ThreadsTests {
    /// `--durability batch` (the meta page flushed with the next commit) writes the same
    /// events and views as the default; an unknown level is refused before any database exists.
    @Test func durabilityBatchWritesTheSameIndex() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 20_000, seed: 4)
            var outcomes: [(log: String, ls: Data, du: Data)] = []
            for level in ["commit", "batch"] {
                let db = tmp + "/db-" + level
                let r = try Support.evindex(["run", root, "--db", db, "--durability", level, "--threads", "1"])
                try #require(r.status == 0, "\(r.stderr)")
                #expect(try Support.evindex(["verify", "--db", db]).status == 0)
                outcomes.append(try Self.outcome(root, db))
            }
            Self.expectSame(outcomes, ["--durability commit", "--durability batch"])
            for level in Durability.allCases {
                let log = try EventLog(directory: tmp + "/db-open-" + level.rawValue, create: true, durability: level)
                #expect(log.environment.flushesMetaPageOnCommit == (level == .commit), "\(level)")
            }
            let bad = try Support.evindex(["run", root, "--db", tmp + "/db-bad", "--durability", "sometimes"])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("--durability"))
            #expect(!FileManager.default.fileExists(atPath: tmp + "/db-bad"))
        }
    }
}

extension ThreadsTests {
    /// A directory with more names than `DirectoryReader.hugeDirectory` has its stats shared out in
    /// chunks among the threads: the same entries, errors and events as one thread.
    @Test func aHugeDirectoryStatedInChunksGivesTheSameEvents() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            let wide = root + "/wide"
            try FileManager.default.createDirectory(atPath: wide + "/sub", withIntermediateDirectories: true)
            for i in 0..<5000 {
                _ = FileManager.default.createFile(atPath: wide + String(format: "/f%05d", i), contents: Data(repeating: 1, count: i % 7))
            }
            let fs = FaultyFileSystem(faults: ["stat:f01234": .permissionDenied, "stat:f04999": Errno(rawValue: EIO)])
            let runs = try Self.runs(root, tmp, threads: [1, 3], fileSystem: fs)
            for run in runs {
                #expect(run.summary.counts.errors == 2)
                #expect(run.summary.counts.files == 4998)
            }
            #expect(runs[1].outcome.log == runs[0].outcome.log)
            #expect(runs[1].outcome.ls == runs[0].outcome.ls)
            #expect(runs[1].outcome.du == runs[0].outcome.du)
        }
    }
}

extension ThreadsTests {
    /// A recorded listing is what the delegate gets back, whatever listers read ahead.
    @Test func aRecordedListingWinsOverAReadAhead() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            for i in 0..<40 {
                for j in 0..<8 {
                    let dir = root + "/d\(i)/e\(j)"
                    try FileManager.default.createDirectory(atPath: dir + "/g", withIntermediateDirectories: true)
                    for k in 0..<4 { _ = FileManager.default.createFile(atPath: dir + "/f\(k)", contents: nil) }
                }
            }
            var results: [[String]] = []
            for threads in [1, 4] {
                var delegate = RecordingDelegate(root: root)
                delegate.recordedListings = true
                let fs = DescriptorCountingFileSystem()
                #expect(try Walker(fileSystem: fs, threads: threads).walk(root: root, rootID: 1, delegate: &delegate))
                #expect(fs.opened.load(ordering: .relaxed) == fs.closed.load(ordering: .relaxed))
                results.append(delegate.entries.map { String(decoding: $0, as: UTF8.self) }.sorted())
            }
            // Every listing lacks its last name: no d*/e*/g, no d*/e7, no d9.
            #expect(!results[0].contains { $0.hasSuffix("/g") || $0.hasSuffix("/e7") || $0.hasSuffix("/d9") })
            #expect(results[0].count == 39 + 39 * 7 + 39 * 7 * 4)
            let same = results[1] == results[0]
            #expect(same, "\(Set(results[1]).symmetricDifference(results[0]).count) entries differ")
        }
    }
}

/// Out of descriptors once: the first `openat` of each directory named in `names`, and
/// the first read of any `.gitignore`, fail with EMFILE (as a lister's would while
/// listings read ahead hold descriptors); every later attempt succeeds.
final class OutOfDescriptorsOnceFileSystem: PassThroughFileSystem, @unchecked Sendable {
    // @unchecked: `failed` is touched only with `lock` held.
    let real = PosixFileSystem()
    let names: Set<String>
    private let lock = NSLock()
    private var failed: Set<String> = []

    init(names: Set<String>) { self.names = names }

    private func failOnce(_ key: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return failed.insert(key).inserted
    }

    func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        let n = String(cString: name)
        if names.contains(n) && failOnce("open:" + n) { throw Errno(rawValue: EMFILE) }
        return try real.openDirectory(parent, name)
    }
    func readFile(_ directory: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> [UInt8] {
        if String(cString: name) == ".gitignore" && failOnce("read:.gitignore") { throw Errno(rawValue: EMFILE) }
        return try real.readFile(directory, name)
    }
}

extension ThreadsTests {
    /// A directory, or a `.gitignore`, that cannot be opened for lack of descriptors is read
    /// once more by the walk: the index is the one a run without the fault makes.
    @Test func runningOutOfDescriptorsOnceIsReadAgain() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            for d in ["a", "b", "c"] {
                try FileManager.default.createDirectory(atPath: root + "/" + d + "/sub", withIntermediateDirectories: true)
                try "*.log\n".write(toFile: root + "/" + d + "/.gitignore", atomically: false, encoding: .utf8)
                for f in ["x.log", "y.txt", "sub/z.log", "sub/w.txt"] {
                    _ = FileManager.default.createFile(atPath: root + "/" + d + "/" + f, contents: nil)
                }
            }
            try FileManager.default.createDirectory(atPath: root + "/.git/objects", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/.git/refs", withIntermediateDirectories: true)
            try "ref: refs/heads/main\n".write(toFile: root + "/.git/HEAD", atomically: false, encoding: .utf8)
            var rules = RuleSet()
            rules.gitignore = true
            let expected = try Self.runs(root, tmp + "/reference", threads: [1], fileSystem: PosixFileSystem(), rules: rules)[0].outcome
            for threads in [1, 3] {
                let run = try Self.runs(
                    root, tmp, threads: [threads], fileSystem: OutOfDescriptorsOnceFileSystem(names: ["b", "sub"]),
                    rules: rules)[0]
                #expect(run.summary.counts.errors == 0, "threads \(threads)")
                #expect(run.outcome.log == expected.log, "threads \(threads)")
                #expect(run.outcome.ls == expected.ls, "threads \(threads)")
            }
        }
    }
}

/// Records which directories were read on one given thread, and slows every read a little
/// so that a thread with spare time finds directories waiting to be read.
final class ReadingThreadFileSystem: PassThroughFileSystem, @unchecked Sendable {
    // @unchecked: `watched` is immutable; the counters are atomic.
    let real = PosixFileSystem()
    private let watched: pthread_t
    let readOnWatched = Atomic<Int>(0)
    let reads = Atomic<Int>(0)

    init(watching thread: pthread_t) { watched = thread }

    func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        reads.add(1, ordering: .relaxed)
        if pthread_equal(pthread_self(), watched) != 0 { readOnWatched.add(1, ordering: .relaxed) }
        usleep(200)
        try real.readDirectory(directory, body)
    }
}

extension ThreadsTests {
    /// With two threads or more the writer (the thread that called `IndexJob.run`) reads
    /// directories ahead of the walk when it has nothing to write; with one it reads none.
    /// Either way the log and the views are the same.
    @Test func theWriterReadsAheadWhenItHasNothingToWrite() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 5_000, seed: 12)
            var outcomes: [(log: String, ls: Data, du: Data)] = []
            for threads in [1, 2, 3] {
                let fs = ReadingThreadFileSystem(watching: pthread_self())
                var options = RunOptions(root: Array(root.utf8), databaseDirectory: tmp + "/db\(threads)")
                options.threads = threads
                let summary = try IndexJob.run(options, fileSystem: fs)
                #expect(summary.status == .completed)
                let onWriter = fs.readOnWatched.load(ordering: .relaxed), all = fs.reads.load(ordering: .relaxed)
                #expect(all >= 500)
                if threads == 1 {
                    #expect(onWriter == 0, "--threads 1: the writer read \(onWriter) directories")
                } else {
                    #expect(onWriter > 0 && onWriter < all, "--threads \(threads): the writer read \(onWriter) of \(all) directories")
                }
                outcomes.append(try Self.outcome(root, tmp + "/db\(threads)"))
            }
            Self.expectSame(outcomes, ["--threads 1", "--threads 2", "--threads 3"])
        }
    }
}
