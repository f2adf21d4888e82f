import EventStore
import Events
import Foundation
import Indexing
import LMDB
import Projections
import Synchronization
import TestSupport
import Testing
import Traversal

/// Renames that reuse names: a directory's name taken by another kind, swaps, rotations,
/// moves into a former sibling, parent and child swapped, moves out of a directory that
/// then becomes a file. After each, the views equal `find`, the next run succeeds, and
/// `verify` passes; `verify` fails on views that do not hold together.
@Suite(.serialized)
struct RenameTests {
    /// A tree made by `setup`, indexed, changed by `change`, indexed again (shell, in the root).
    struct Pattern: CustomTestStringConvertible, Sendable {
        var name: String
        var setup: String
        var change: String
        /// The rules of both runs, and the directory they reject after the change.
        var rules: [String] = []
        var rejected: String? = nil
        var testDescription: String { name }
    }

    static let patterns: [Pattern] = [
        Pattern(
            name: "a file takes a directory's name", setup: "mkdir -p app/sub; echo a > app/a; echo b > app/sub/b",
            change: "mv app app.old; echo now > app"),
        Pattern(
            name: "a file takes the name of a directory moved to an earlier name", setup: "mkdir -p zapp/sub; echo a > zapp/sub/a",
            change: "mv zapp app; echo now > zapp"),
        Pattern(
            name: "a symlink takes a directory's name (a release switch)", setup: "mkdir -p app/sub; echo a > app/a",
            change: "mv app app-v1; ln -s app-v1 app"),
        Pattern(name: "a FIFO takes a directory's name", setup: "mkdir -p app/sub; echo a > app/a", change: "mv app app-v1; mkfifo app"),
        Pattern(
            name: "a hard link takes a directory's name", setup: "mkdir -p app/sub; echo a > app/a; echo x > x",
            change: "mv app app-v1; ln x app"),
        Pattern(
            name: "another directory takes a directory's name", setup: "mkdir -p app/sub; echo a > app/sub/a",
            change: "mv app app.old; mkdir app; echo n > app/n"),
        Pattern(
            name: "a directory moved into another parent, its name taken by a file",
            setup: "mkdir -p a/app/sub z; echo 1 > a/app/sub/1", change: "mv a/app z/app.old; echo > a/app"),
        Pattern(
            name: "a directory moved into an earlier parent, its name taken by a file",
            setup: "mkdir -p z/app/sub a; echo 1 > z/app/sub/1", change: "mv z/app a/app.old; echo > z/app"),
        Pattern(
            name: "a subdirectory moved out, its parent replaced by a file",
            setup: "mkdir -p q/x/a/sub q/y; echo 1 > q/x/a/sub/f; echo 2 > q/x/a/g",
            change: "mv q/x/a/sub q/y/sub; rm -rf q/x/a; touch q/x/a"),
        Pattern(
            name: "a subdirectory moved up, its parent replaced by a file", setup: "mkdir -p d/e/f; echo 1 > d/e/f/1",
            change: "mv d/e e; rm -rf d; echo > d"),
        Pattern(
            name: "a subdirectory moved to a later parent, its parent replaced by a file",
            setup: "mkdir -p a/d/e/f z; echo 1 > a/d/e/f/1", change: "mv a/d/e z/e; rm -rf a/d; echo > a/d"),
        Pattern(
            name: "a file's and a directory's names swapped", setup: "mkdir -p d/sub; echo 1 > d/sub/f; echo 2 > f",
            change: "mv d tmp; mv f d; mv tmp f"),
        Pattern(
            name: "a directory's and a file's names swapped", setup: "mkdir -p z/sub; echo 1 > z/sub/f; echo 2 > a",
            change: "mv z tmp; mv a z; mv tmp a"),
        Pattern(
            name: "two directories' names swapped", setup: "mkdir -p a/x b/y; echo 1 > a/x/1; echo 2 > b/y/2",
            change: "mv a tmp; mv b a; mv tmp b"),
        Pattern(
            name: "three directories' names rotated", setup: "mkdir -p a/x b/y c/z; echo 1 > a/x/1; echo 2 > b/y/2; echo 3 > c/z/3",
            change: "mv a tmp; mv b a; mv c b; mv tmp c"),
        Pattern(
            name: "a file, a directory and a symlink rotated", setup: "mkdir -p b/y; echo 1 > a; echo 2 > b/y/2; ln -s a c",
            change: "mv a tmp; mv b a; mv c b; mv tmp c"),
        Pattern(name: "a directory moved into its former sibling", setup: "mkdir -p a/x b; echo 1 > a/x/1", change: "mv a b/a"),
        Pattern(
            name: "a directory moved into its former sibling, which takes its name",
            setup: "mkdir -p a/x b; echo 1 > a/x/1", change: "mv b a/b; mv a b; mkdir a"),
        Pattern(
            name: "parent and child swapped", setup: "mkdir -p p/c/g; echo 1 > p/c/g/1; echo 2 > p/2",
            change: "mv p/c c; mv p c/p"),
        Pattern(
            name: "parent and child swap names", setup: "mkdir -p p/c/g; echo 1 > p/c/g/1; echo 2 > p/2",
            change: "mv p x; mv x/c p; mv x p/c"),
        Pattern(
            name: "a directory moved into the place of a removed file of the same name",
            setup: "mkdir -p a/s b; echo 1 > a/s/1; echo 2 > b/s", change: "rm b/s; mv a/s b/s; touch a/s"),
        Pattern(
            name: "a directory replaced, then its old child moved back under the new one",
            setup: "mkdir -p a/s m; echo 1 > a/s/1", change: "mv a z; mkdir a; mv z/s a/s"),
        Pattern(name: "a file replaced by a directory", setup: "echo 1 > f; mkdir g; echo 2 > g/2", change: "rm f; mv g f"),
        Pattern(
            name: "a subdirectory moved out of a directory the rules now reject",
            setup: "mkdir -p build/sub/deep; echo 1 > build/sub/deep/1", change: "mv build/sub sub; mkdir build/MARK",
            rules: ["--reject-if-child", "MARK"], rejected: "build"),
        Pattern(
            name: "a subdirectory moved into a later sibling of a directory the rules now reject",
            setup: "mkdir -p a/sub/deep z; echo 1 > a/sub/deep/1", change: "mv a/sub z/sub; mkdir a/MARK",
            rules: ["--reject-if-child", "MARK"], rejected: "a"),
    ]

    /// Runs `script` with `sh` in `directory`.
    static func shell(_ script: String, in directory: String) throws {
        let r = try Support.run(["/bin/sh", "-ec", "cd \"$1\"; " + script, "sh", directory])
        try #require(r.status == 0, "\(script): \(r.stderr)")
    }

    /// The views equal `find` (less the directory the rules reject, if any), and so do they
    /// after one more run, which must succeed; the log replays to them and they hold together.
    static func expectExact(
        _ root: String, _ db: String, rules: [String] = [], rejected: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        func check() throws {
            guard let rejected else { return try Checks.expectViewsMatchDisk(root, db, sourceLocation: sourceLocation) }
            let left = root + "/" + rejected
            let found = Set(try FindOracle.entries(root).map(\.path).filter { $0 != Array(left.utf8) && !$0.starts(with: Array((left + "/").utf8)) })
            let listed = Set(try Support.objects(try Support.evindex(["ls", root, "-R", "--json", "--db", db]).stdout).map { Support.pathBytes($0) })
            #expect(
                found == listed,
                "missing \(found.subtracting(listed).map { String(decoding: $0, as: UTF8.self) }), extra \(listed.subtracting(found).map { String(decoding: $0, as: UTF8.self) })",
                sourceLocation: sourceLocation)
        }
        try check()
        let again = try Support.evindex(["run", root, "--db", db] + rules)
        #expect(again.status == 0, "the next run: \(again.stderr)", sourceLocation: sourceLocation)
        try check()
        let verified = try Support.evindex(["verify", "--db", db])
        #expect(verified.status == 0, "verify: \(verified.stderr)", sourceLocation: sourceLocation)
    }

    @Test(arguments: patterns)
    func renameAndReuse(_ pattern: Pattern) throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/t", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try Self.shell(pattern.setup, in: root)
            // Older than the racy window: unchanged directories are trusted on the rescan.
            Thread.sleep(forTimeInterval: 2.1)
            let first = try Support.evindex(["run", root, "--db", db] + pattern.rules)
            try #require(first.status == 0, "\(first.stderr)")
            try Self.shell(pattern.change, in: root)
            let second = try Support.evindex(["run", root, "--db", db] + pattern.rules)
            #expect(second.status == 0, "\(second.stderr)")
            try Self.expectExact(root, db, rules: pattern.rules, rejected: pattern.rejected)
        }
    }

    /// Seeded rounds of rename-and-reuse operations, each followed by a rescan: the views
    /// equal `find` after every round.
    @Test(arguments: [1, 2, 3])
    func churnOfRenamesAndReuses(_ seed: UInt64) throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/t", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try Self.shell(
                "mkdir -p a/b/c d/e f/g/h; for n in a/1 a/b/2 a/b/c/3 d/4 d/e/5 f/6 f/g/7 f/g/h/8 9; do echo $n > $n; done",
                in: root)
            var random = SeededRandom(seed: seed)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            for round in 0..<12 {
                for _ in 0..<(1 + random.next(3)) { try RenameChurn.step(root, &random) }
                let r = try Support.evindex(["run", root, "--db", db])
                #expect(r.status == 0, "seed \(seed) round \(round): \(r.stderr)")
                try Checks.expectViewsMatchDisk(root, db)
            }
            try Self.expectExact(root, db)
        }
    }

    /// A name swapped while the walk is between a directory's listing and its own read:
    /// the run writes nothing that breaks the views, and a quiet rescan makes them exact.
    @Test(arguments: [
        "mv app app.old; echo now > app", "mv app app.old; mkdir app; echo n > app/n",
        "mv app tmp; mv other app; mv tmp other", "mv app app-v1; ln -s app-v1 app",
    ])
    func swapMetMidWalk(_ change: String) throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/t", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try Self.shell("mkdir -p app/sub other/o; echo a > app/a; echo b > app/sub/b; echo o > other/o/1", in: root)
            Thread.sleep(forTimeInterval: 2.1)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Self.shell("echo new > app/new", in: root)
            let swapping = SwapOnOpen(name: "app") { try? Self.shell(change, in: root) }
            let summary = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: swapping)
            #expect(summary.status == .completed)
            let swapped = swapping.swapped.load(ordering: .relaxed)
            #expect(swapped)
            // The run saw both sides of the swap; its views still hold together.
            let verified = try Support.evindex(["verify", "--db", db])
            #expect(verified.status == 0, "verify: \(verified.stderr)")
            let quiet = try Support.evindex(["run", root, "--db", db])
            #expect(quiet.status == 0, "\(quiet.stderr)")
            try Self.expectExact(root, db)
        }
    }

    /// Renames, swaps, names taken by files, moves and writes while runs (1, 2 and 3
    /// threads) index the tree (Fixtures/churn.py): after two quiet rescans the index
    /// equals a walk of the tree and `verify` passes.
    @Test func churnDuringRunsEndsExact() throws {
        try Support.withTemporaryDirectory { tmp in
            let r = try Support.run([
                "/usr/bin/env", "python3", Support.fixtures.appendingPathComponent("churn.py").path,
                Support.evindex, tmp + "/churn", "8", "2",
            ])
            #expect(r.status == 0, "\(r.text)\(r.stderr)")
        }
    }

    /// Views that equal a replay of their log but do not hold together (what the rename
    /// bug left: an entry whose directory row an earlier event of the same run dropped)
    /// fail `verify` and `replay --verify`, naming the entry.
    @Test func verifyFailsOnViewsThatDoNotHoldTogether() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/t", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/app/sub", withIntermediateDirectories: true)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
            // The events the detector wrote before its fix: `app` updated from a directory to
            // a file (its rows dropped), then a move of `app` to `app.old` as that directory.
            let log = try EventLog(directory: db, create: true)
            let views = try Views(environment: log.environment)
            try log.environment.write { txn in
                guard let app = try views.entry(txn, parent: 1, name: Array("app".utf8)) else { throw POSIXError(.ENOENT) }
                var file = app
                file.kind = .file
                file.mode = 0o100644
                file.dirID = 0
                var sequence = try log.lastSequence(txn)
                var appender = LogAppender(log: log)
                let fold = ViewFold(views: views)
                let run = UInt32(2), time = Int64(Date().timeIntervalSince1970 * 1000)
                // A run of its own with its row, as the runs table holds every run of the log.
                let rootBytes = try log.allRuns(txn)[0].root
                try log.putRun(
                    txn,
                    RunRecord(
                        id: run, root: rootBytes, rootDirID: 1, status: .running, firstSequence: sequence + 1,
                        lastSequence: sequence + 3, startedMs: time))
                for event in [
                    Event.jobStarted(root: rootBytes, rootDirID: 1, options: "", version: "test"),
                    .entryUpdated(parent: 1, name: Array("app".utf8), old: app, new: file),
                    .entryMoved(fromParent: 1, fromName: Array("app".utf8), toParent: 1, toName: Array("app.old".utf8), app),
                ] {
                    sequence += 1
                    let record = EventRecord(sequence: sequence, run: run, timeMs: time, event: event)
                    try appender.append(txn, record)
                    try fold.apply(txn, record)
                }
                try appender.flush(txn)
                try fold.flush(txn, lastSequence: sequence)
            }
            for command in [["verify"], ["replay", "--verify", "--from-scratch"]] {
                let r = try Support.evindex(command + ["--db", db])
                #expect(r.status == 1, "\(command): \(r.text)")
                #expect(r.stderr.contains("do not hold together") && r.stderr.contains("app.old"), "\(command): \(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1)
            }
        }
    }
}

/// A filesystem that runs `swap` once, just before the walk opens a directory called `name`.
final class SwapOnOpen: PassThroughFileSystem, @unchecked Sendable {
    // @unchecked: `swap` runs once, guarded by the atomic.
    let real = PosixFileSystem()
    let name: String
    let swap: () -> Void
    let swapped = Atomic<Bool>(false)

    init(name: String, swap: @escaping () -> Void) {
        self.name = name
        self.swap = swap
    }

    func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        if String(cString: name) == self.name, swapped.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            swap()
        }
        return try real.openDirectory(parent, name)
    }
}

/// A small deterministic generator (splitmix64): the same seed, the same churn.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
    mutating func pick<T>(_ items: [T]) -> T? { items.isEmpty ? nil : items[next(items.count)] }
}

/// One random rename-and-reuse step on a real tree.
enum RenameChurn {
    static let names = ["a", "app", "app.old", "b", "m", "x", "z", "zz"]

    /// Every entry below `root` (relative paths) and whether it is a directory.
    static func entries(_ root: String) -> [(path: String, isDirectory: Bool)] {
        var result: [(String, Bool)] = []
        var pending = [""]
        while let dir = pending.popLast() {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + dir)) ?? []
            for name in names.sorted() {
                let path = dir.isEmpty ? name : dir + "/" + name
                var st = stat()
                guard lstat(root + "/" + path, &st) == 0 else { continue }
                let isDirectory = st.st_mode & S_IFMT == S_IFDIR
                result.append((path, isDirectory))
                if isDirectory { pending.append(path) }
            }
        }
        return result
    }

    static func parent(_ path: String) -> String {
        guard let cut = path.lastIndex(of: "/") else { return "" }
        return String(path[..<cut])
    }

    static func join(_ dir: String, _ name: String) -> String { dir.isEmpty ? name : dir + "/" + name }

    static func exists(_ root: String, _ path: String) -> Bool {
        var st = stat()
        return lstat(root + "/" + path, &st) == 0
    }

    /// A name in `dir` that is free.
    static func freeName(_ root: String, in dir: String, _ random: inout SeededRandom) -> String {
        for _ in 0..<20 {
            let candidate = join(dir, random.pick(names)! + (random.next(2) == 0 ? "" : String(random.next(9))))
            if !exists(root, candidate) { return candidate }
        }
        return join(dir, "n\(random.next(1_000_000))")
    }

    /// Something new at `path`: a file, a symlink, a FIFO, a hard link or a filled directory.
    static func occupy(_ root: String, _ path: String, _ random: inout SeededRandom) throws {
        let q = "'\(path)'"
        let file = entries(root).filter { !$0.isDirectory }.map(\.path)
        switch random.next(5) {
        case 0: try RenameTests.shell("echo now > \(q)", in: root)
        case 1: try RenameTests.shell("ln -s target \(q)", in: root)
        case 2: try RenameTests.shell("mkfifo \(q)", in: root)
        case 3:
            if let f = random.pick(file) {
                try RenameTests.shell("ln '\(f)' \(q) 2>/dev/null || echo l > \(q)", in: root)
            } else {
                try RenameTests.shell("echo l > \(q)", in: root)
            }
        default: try RenameTests.shell("mkdir \(q); echo 1 > \(q)/one; mkdir \(q)/sub; echo 2 > \(q)/sub/two", in: root)
        }
    }

    static func step(_ root: String, _ random: inout SeededRandom) throws {
        let all = entries(root)
        let directories = all.filter(\.isDirectory).map(\.path)
        func isInside(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b + "/") }
        switch random.next(6) {
        case 0:
            // A directory moves away (anywhere) and something takes its name.
            guard let d = random.pick(directories) else { return }
            let targets = [""] + directories.filter { !isInside($0, d) }
            let to = freeName(root, in: random.pick(targets)!, &random)
            try RenameTests.shell("mv '\(d)' '\(to)'", in: root)
            try occupy(root, d, &random)
        case 1, 2:
            // Two or three entries swap or rotate their names.
            var chosen: [String] = []
            for _ in 0..<(2 + random.next(2)) {
                guard let e = random.pick(all.map(\.path)), !chosen.contains(where: { isInside(e, $0) || isInside($0, e) }) else { continue }
                chosen.append(e)
            }
            guard chosen.count >= 2 else { return }
            let tmp = "rotate.tmp"
            var script = "mv '\(chosen[0])' \(tmp)"
            for i in 1..<chosen.count { script += "; mv '\(chosen[i])' '\(chosen[i - 1])'" }
            script += "; mv \(tmp) '\(chosen[chosen.count - 1])'"
            try RenameTests.shell(script, in: root)
        case 3:
            // A directory moves into a sibling, which may then take its name.
            guard let d = random.pick(directories) else { return }
            let siblings = directories.filter { parent($0) == parent(d) && $0 != d }
            guard let s = random.pick(siblings) else { return }
            let to = freeName(root, in: s, &random)
            try RenameTests.shell("mv '\(d)' '\(to)'", in: root)
            if random.next(2) == 0 { try RenameTests.shell("mv '\(s)' '\(d)'", in: root) }
        case 4:
            // Parent and child swap places.
            guard let c = random.pick(directories.filter { $0.contains("/") }) else { return }
            let p = parent(c)
            let childName = String(c[c.index(after: c.lastIndex(of: "/")!)...])
            try RenameTests.shell("mv '\(p)' swap.tmp; mv 'swap.tmp/\(childName)' '\(p)'", in: root)
            let to = exists(root, join(p, childName)) ? freeName(root, in: p, &random) : join(p, childName)
            try RenameTests.shell("mv swap.tmp '\(to)'", in: root)
        default:
            // A subdirectory moves out, then its old parent becomes something else.
            guard let c = random.pick(directories.filter { $0.contains("/") }) else { return }
            let p = parent(c)
            let targets = [""] + directories.filter { !isInside($0, p) }
            let to = freeName(root, in: random.pick(targets)!, &random)
            try RenameTests.shell("mv '\(c)' '\(to)'; rm -rf '\(p)'", in: root)
            try occupy(root, p, &random)
        }
    }
}
