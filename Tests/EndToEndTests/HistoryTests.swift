import EventStore
import Events
import Foundation
import Indexing
import TestSupport
import Testing
import Traversal

/// `log` filters and `--follow`, `export`/`import`, and `diff`, on real trees and real
/// databases, checked against `find` and mktree's own account of its mutations.
@Suite(.serialized)
struct HistoryTests {
    // MARK: - Helpers

    /// Paths relative to `root` of everything below it, with what `find` says of each.
    static func found(_ root: String) throws -> [[UInt8]: FindEntry] {
        var result: [[UInt8]: FindEntry] = [:]
        for e in try FindOracle.entries(root) {
            result[Array(e.path[(root.utf8.count + 1)...])] = e
        }
        return result
    }

    static func diffJSON(_ arguments: [String]) throws -> (status: Int32, objects: [[String: Any]], stderr: String) {
        let r = try Support.evindex(["diff"] + arguments + ["--json"])
        return (r.status, try Support.objects(r.stdout), r.stderr)
    }

    static func inProcessRun<FS: FileSystem>(_ root: String, _ db: String, _ fs: FS) throws -> RunSummary {
        try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: fs)
    }

    // MARK: - log

    /// `--type`, `--path`, `--from`/`--to`, `--since`/`--until` each keep exactly the
    /// events they name: `--path` against `find` of the subtree, times against the runs'
    /// own start and end.
    @Test func logFiltersKeepExactlyWhatTheyName() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 400, seed: 61)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            var wantBelowAwkward = Set(try FindOracle.entries(root + "/awkward").map(\.path))
            wantBelowAwkward.insert(Array((root + "/awkward").utf8))
            Thread.sleep(forTimeInterval: 1.2)
            try Data(count: 7).write(to: URL(fileURLWithPath: root + "/awkward/added.txt"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let runs = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            let (run1, run2) = (runs[0], runs[1])

            // --path: the EntryCreated events of run 1 below awkward/ are what find lists there.
            let sub = root + "/awkward"
            let created = try Support.objects(
                try Support.evindex(["log", "--run", "1", "--type", "entrycreated", "--path", sub, "--json", "--db", db]).stdout)
            let got = Set(created.map { Support.pathBytes($0) })
            #expect(got.count == wantBelowAwkward.count && got == wantBelowAwkward, "\(got.count) paths vs find's \(wantBelowAwkward.count)")
            #expect(created.allSatisfy { $0["type"] as? String == "EntryCreated" })

            // --type, repeatable and comma-separated, any case.
            let typed = try Support.objects(
                try Support.evindex(["log", "--type", "jobstarted,JOBCOMPLETED", "--type", "EntryCreated", "--json", "--db", db]).stdout)
            #expect(Set(typed.compactMap { $0["type"] as? String }) == ["JobStarted", "JobCompleted", "EntryCreated"])
            #expect(typed.filter { $0["type"] as? String == "JobStarted" }.count == 2)
            let bad = try Support.evindex(["log", "--type", "Nonsense", "--db", db])
            #expect(bad.status == 2)

            // --from/--to.
            let range = try Support.objects(try Support.evindex(["log", "--from", "5", "--to", "9", "--json", "--db", db]).stdout)
            #expect(range.map { ($0["seq"] as! NSNumber).intValue } == [5, 6, 7, 8, 9])

            // --since (ISO-8601, the second after run 1 ended) keeps run 2 only; --until
            // (epoch ms of run 1's end) keeps run 1 only.
            let run1End = (run1["ended_ms"] as! NSNumber).int64Value
            let iso = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(run1End / 1000 + 1)))
            let since = try Support.objects(try Support.evindex(["log", "--since", iso, "--json", "--db", db]).stdout)
            let run2Count = (run2["last_seq"] as! NSNumber).intValue - (run2["first_seq"] as! NSNumber).intValue + 1
            #expect(since.count == run2Count && since.allSatisfy { ($0["run"] as! NSNumber).intValue == 2 }, "since \(iso)")
            let until = try Support.objects(try Support.evindex(["log", "--until", String(run1End), "--json", "--db", db]).stdout)
            #expect(until.count == (run1["last_seq"] as! NSNumber).intValue && until.allSatisfy { ($0["run"] as! NSNumber).intValue == 1 })
            #expect(try Support.evindex(["log", "--since", "yesterday", "--db", db]).status == 2)

            // show: the run's options and version from its JobStarted.
            let shown = try Support.objects(try Support.evindex(["show", "2", "--json", "--db", db]).stdout)[0]
            #expect(shown["options"] as? String == "" && shown["version"] as? String == "0.1.0")
            #expect((shown["snapshot_entries"] as? [Int]) == [])
        }
    }

    /// `log --follow` prints the events of a run in flight within a second of their
    /// commit, and ends with exit 0 on SIGINT. The run is slowed (a sleep per directory)
    /// so it commits many times over several seconds.
    @Test func followShowsEventsOfARunningRunWithinASecond() throws {
        try Support.withTemporaryDirectory { tmp in
            let small = tmp + "/small", root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
            #expect(try Support.evindex(["run", small, "--db", db]).status == 0)
            try Support.makeTree(root, entries: 4000, seed: 62)

            let process = Process()
            process.executableURL = URL(fileURLWithPath: Support.evindex)
            let first = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)[0]
            let next = (first["last_seq"] as! NSNumber).intValue + 1
            process.arguments = ["log", "--follow", "--from", String(next), "--json", "--db", db]
            let pipe = Pipe()
            process.standardOutput = pipe
            _ = FileManager.default.createFile(atPath: tmp + "/follow.err", contents: nil)
            process.standardError = FileHandle(forWritingAtPath: tmp + "/follow.err")
            try process.run()
            let lines = LinesWithArrival(fd: pipe.fileHandleForReading.fileDescriptor)
            Thread.sleep(forTimeInterval: 0.5)

            let fs = SlowFileSystem(delayMicroseconds: 4000)
            let summary = try Self.inProcessRun(root, db, fs)
            #expect(summary.status == .completed)
            let deadline = Date().addingTimeInterval(3)
            while Date() < deadline, !lines.all.contains(where: { $0.0.contains("\"JobCompleted\"") }) { usleep(20_000) }
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0 && process.terminationReason == .exit)

            let received = lines.all
            let stderr = (try? String(contentsOfFile: tmp + "/follow.err", encoding: .utf8)) ?? ""
            #expect(stderr.isEmpty, "\(stderr)")
            let events = received.map { (try! JSONSerialization.jsonObject(with: Data($0.0.utf8)) as! [String: Any], $0.1) }
            #expect(events.count == Int(summary.lastSequence - summary.firstSequence + 1))
            #expect(events.last?.0["type"] as? String == "JobCompleted")
            let times = Set(events.map { ($0.0["time_ms"] as! NSNumber).int64Value })
            #expect(times.count >= 5, "the run committed only \(times.count) times: the test proves little")
            let late = events.filter { $0.1 - ($0.0["time_ms"] as! NSNumber).int64Value > 1000 }
            #expect(
                late.isEmpty,
                "\(late.count) events arrived more than 1 s after their commit, e.g. \(late.first.map { "\($0.0["seq"]!) after \($0.1 - ($0.0["time_ms"] as! NSNumber).int64Value) ms" } ?? "")"
            )
        }
    }

    // MARK: - export and import

    /// A run exported and imported into another database diffs equivalent to the
    /// original (a first index and a rescan, awkward names included), and the imported
    /// index lists what `find` finds.
    @Test func exportImportDiffIsEquivalentForAwkwardNames() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 1500, seed: 63)
            // The awkward names are there: a newline, bytes that are not UTF-8, 204 bytes.
            let names = Set(try FindOracle.entries(root).map { Array($0.path.split(separator: UInt8(ascii: "/")).last!) })
            #expect(names.contains(Array("line\nbreak.txt".utf8)))
            #expect(names.contains { String(validating: $0, as: UTF8.self) == nil })
            #expect(names.contains { $0.count == 204 })
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            _ = try Checks.mutate(root, 30, seed: 63)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)

            for run in ["1", "2"] {
                let exported = try Support.evindex(["export", run, "--db", db])
                #expect(exported.status == 0, "\(exported.stderr)")
                let file = tmp + "/run\(run).ndjson"
                try exported.stdout.write(to: URL(fileURLWithPath: file))
                let other = tmp + "/imported\(run)"
                let imported = try Support.evindex(["import", file, "--db", other, "--json"])
                #expect(imported.status == 0, "\(imported.stderr)")
                let result = try Support.objects(imported.stdout)[0]
                let newRun = (result["run"] as! NSNumber).stringValue
                #expect((result["base_run"] != nil) == (run == "2"))
                let d = try Self.diffJSON(["--logs", db, other, run, newRun])
                #expect(d.status == 0, "run \(run): \(d.objects.prefix(4)) \(d.stderr)")
                #expect(try Support.evindex(["verify", "--db", other]).status == 0)
            }
            // The import of the rescan holds what is on disk now.
            try Checks.expectViewsMatchDisk(root, tmp + "/imported2")
            // A second import of the same root into the same database is refused.
            let again = try Support.evindex(["import", tmp + "/run2.ndjson", "--db", tmp + "/imported2"])
            #expect(again.status == 2 && again.stderr.hasPrefix("evindex: ") && again.stderr.contains("overlaps"))
            // From standard input, and a damaged file is refused with its line number.
            let piped = try Support.run([
                "/bin/sh", "-c", "\"$1\" import - --db \"$2\" < \"$3\"", "sh", Support.evindex, tmp + "/piped", tmp + "/run1.ndjson",
            ])
            #expect(piped.status == 0, "\(piped.stderr)")
            try Data("{\"evindex_export\":1,\"run\":1\n{oops\n".utf8).write(to: URL(fileURLWithPath: tmp + "/bad.ndjson"))
            let bad = try Support.evindex(["import", tmp + "/bad.ndjson", "--db", tmp + "/bad"])
            #expect(bad.status == 2 && bad.stderr.contains("line 1"), "\(bad.stderr)")
        }
    }

    // MARK: - diff

    /// Two full runs of an unchanged tree, in one database and in two (the second read
    /// with every directory's names in reverse order; then with 1 and 4 threads), diff as
    /// equivalent; a change makes them differ by that one file.
    @Test func unchangedTreeDiffsEquivalentWhateverTheWalkOrder() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db", reversed = tmp + "/reversed"
            try Support.makeTree(root, entries: 2000, seed: 64)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            #expect(try Support.evindex(["run", root, "--db", db, "--full-listing"]).status == 0)
            let same = try Support.evindex(["diff", "1", "2", "--db", db])
            #expect(same.status == 0 && same.text.hasSuffix("equivalent\n"), "\(same.text)\(same.stderr)")

            let fs = ReversedFileSystem()
            _ = try Self.inProcessRun(root, reversed, fs)
            #expect(fs.reads > 100)
            // The walk goes in name order whatever order readdir gives: the same events in
            // the same order.
            let orderA = try Support.objects(try Support.evindex(["log", "--type", "EntryCreated", "--json", "--db", db]).stdout).map {
                Support.pathBytes($0)
            }
            let orderB = try Support.objects(try Support.evindex(["log", "--type", "EntryCreated", "--json", "--db", reversed]).stdout).map {
                Support.pathBytes($0)
            }
            #expect(orderA == orderB && orderA.count > 1000)
            let across = try Self.diffJSON(["--logs", db, reversed, "2", "1"])
            #expect(across.status == 0, "\(across.objects.prefix(3))")
            // And whatever the thread count.
            for threads in ["1", "4"] {
                #expect(try Support.evindex(["run", root, "--db", tmp + "/threads" + threads, "--threads", threads]).status == 0)
            }
            let threaded = try Self.diffJSON(["--logs", tmp + "/threads1", tmp + "/threads4", "1", "1"])
            #expect(threaded.status == 0, "\(threaded.objects.prefix(3))")

            // The control: one file changed, one difference, named.
            try Data(count: 3).write(to: URL(fileURLWithPath: root + "/awkward/with space.txt"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let changed = try Self.diffJSON(["1", "3", "--db", db])
            #expect(changed.status == 1)
            let entries = changed.objects.filter { $0["type"] as? String == "entry" }
            #expect(entries.map { Support.pathBytes($0) } == [Array("awkward/with space.txt".utf8)])
            #expect((entries.first?["fields"] as? [String])?.contains("size") == true)
        }
    }

    /// Runs before and after `mktree --mutate` diff to exactly what changed by path:
    /// `find` before and after is the oracle; mktree's summary accounts for the paths.
    @Test(arguments: [(12, 71), (25, 72)])
    func mutationDiffsToExactlyTheMutation(_ k: Int, _ seed: Int) throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 3000, seed: seed)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let before = try Self.found(root)
            let summary = try Checks.mutate(root, k, seed: seed)
            let after = try Self.found(root)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)

            let d = try Self.diffJSON(["1", "2", "--db", db])
            #expect(d.status == 1)
            let entries = d.objects.filter { $0["type"] as? String == "entry" }
            func paths(_ kind: String) -> Set<[UInt8]> {
                Set(entries.filter { $0["difference"] as? String == kind }.map { Support.pathBytes($0) })
            }
            let onlyA = Set(before.keys).subtracting(after.keys), onlyB = Set(after.keys).subtracting(before.keys)
            let changed = Set(before.keys).intersection(after.keys).filter { p in
                let (x, y) = (before[p]!, after[p]!)
                return x.kind != y.kind || x.size != y.size || x.inode != y.inode || x.mtimeNs != y.mtimeNs
            }
            #expect(paths("only_in_a") == onlyA, "only in A: \(paths("only_in_a").count) vs find \(onlyA.count)")
            #expect(paths("only_in_b") == onlyB, "only in B: \(paths("only_in_b").count) vs find \(onlyB.count)")
            #expect(paths("changed") == Set(changed), "changed: \(paths("changed").count) vs find \(changed.count)")

            // mktree's account: each created file, renamed file and moved directory is one
            // path only in B outside any moved subtree; each deleted and renamed file one
            // path only in A; each modified file one change of size or mtime.
            let top = entries.filter { $0["inside_subtree"] == nil }
            func count(_ kind: String, _ test: (String, [String: Any]) -> Bool) -> Int {
                top.filter { $0["difference"] as? String == kind }.filter { o in
                    test(String(decoding: Support.pathBytes(o).split(separator: UInt8(ascii: "/")).last!, as: UTF8.self), o)
                }.count
            }
            let kindOf: ([String: Any]) -> String? = { (($0["a"] ?? $0["b"]) as? [String: Any])?["kind"] as? String }
            #expect(count("only_in_b") { n, o in kindOf(o) == "file" && n.hasPrefix("new_") && !n.hasSuffix(".renamed") } == summary["created"])
            #expect(count("only_in_b") { n, o in kindOf(o) == "file" && n.hasSuffix(".renamed") } == summary["renamed"])
            #expect(count("only_in_b") { n, o in kindOf(o) == "dir" && n.contains("_moved") } == summary["moved_dirs"])
            #expect(count("only_in_a") { _, o in kindOf(o) == "file" } == summary["deleted"]! + summary["renamed"]!)
            #expect(count("changed") { _, o in kindOf(o) == "file" } == summary["modified"])
            #expect(summary["moved_dirs"]! > 0 || k < 20, "\(summary)")

            // Human output: short, moved directories one line each.
            let human = try Support.evindex(["diff", "1", "2", "--db", db, "--limit", "5"])
            #expect(human.status == 1)
            #expect(human.text.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("  A: ") && !$0.hasPrefix("  B: ") }.count == 5)
            #expect(human.text.contains("more differences"))
        }
    }

    /// A directory one run could not open (EACCES, injected) against a clean run: that
    /// directory is the first divergence, the error is shown, and what only the clean run
    /// holds below it is one line.
    @Test func unreadableDirectoryIsTheFirstDivergence() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", clean = tmp + "/clean", faulty = tmp + "/faulty"
            try Support.makeTree(root, entries: 800, seed: 65)
            let locked = root + "/code"
            #expect(FileManager.default.fileExists(atPath: locked))
            #expect(try Support.evindex(["run", root, "--db", clean]).status == 0)
            let fs = FaultyFileSystem(faults: ["open:code": .permissionDenied])
            #expect(try Self.inProcessRun(root, faulty, fs).counts.errors == 1)

            let below = try FindOracle.entries(locked)
            let bytes = below.filter { $0.kind == "file" }.reduce(UInt64(0)) { $0 + $1.size }
            let r = try Support.evindex(["diff", "--logs", clean, faulty, "1", "1"])
            #expect(r.status == 1)
            let lines = r.text.split(separator: "\n").map(String.init)
            let at = lines.firstIndex(of: "first divergence: code/")
            #expect(at != nil, "\(r.text)")
            if let at {
                #expect(lines[at + 1].contains("EntryCreated  \(locked)/"))
                #expect(lines[at + 2].contains("NonCriticalError  \(locked): opendir: EACCES"))
            }
            #expect(lines.contains("  code/ (\(below.count) entries, \(bytes) bytes) only in A: B could not read it"), "\(r.text)")
            #expect(lines.contains("  EACCES opendir (1): code"))
            #expect(
                !lines.contains { $0.hasPrefix("  ") && $0.contains("code/") && !$0.hasPrefix("  code/ (") && !$0.contains("run 1") }, "\(r.text)")
            #expect(lines.count < 20)
            // JSON: every missing path, each marked as inside the missing listing.
            let d = try Self.diffJSON(["--logs", clean, faulty, "1", "1"])
            let inside = d.objects.filter { $0["inside_subtree"] as? Bool == true }.map { Support.pathBytes($0) }
            #expect(Set(inside) == Set(below.map { Array($0.path[(root.utf8.count + 1)...]) }))
            let divergence = d.objects.first { $0["type"] as? String == "first_divergence" }
            #expect(divergence?["path"] as? String == "code")
        }
    }

    /// Bad input exits 2 with one line.
    @Test func diffRefusesBadInput() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            for args in [["1"], ["1", "7"], ["1@99", "1"], ["x", "1"], ["--logs", db, tmp + "/none", "1", "1"]] {
                let r = try Support.evindex(["diff"] + args + ["--db", db])
                #expect(r.status == 2, "\(args): \(r.stderr)")
            }
            #expect(try Support.evindex(["diff", "1", "1", "--db", db]).status == 0)
        }
    }
}

/// Reads lines from a descriptor on a thread, noting when each arrived (epoch ms).
final class LinesWithArrival: @unchecked Sendable {
    // @unchecked: `lines` is only touched under `lock`.
    private let lock = NSLock()
    private var lines: [(String, Int64)] = []

    init(fd: Int32) {
        let thread = Thread { [self] in
            var pending: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n <= 0 { return }
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                pending.append(contentsOf: buffer[0..<n])
                while let nl = pending.firstIndex(of: 10) {
                    let line = String(decoding: pending[..<nl], as: UTF8.self)
                    pending.removeSubrange(...nl)
                    lock.lock(); lines.append((line, now)); lock.unlock()
                }
            }
        }
        thread.start()
    }

    var all: [(String, Int64)] { lock.lock(); defer { lock.unlock() }; return lines }
}

/// Sleeps before each directory read: a run that takes seconds on a small tree.
struct SlowFileSystem: PassThroughFileSystem {
    let real = PosixFileSystem()
    let delayMicroseconds: UInt32
    func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        usleep(delayMicroseconds)
        try real.readDirectory(directory, body)
    }
}

/// Hands every directory's names over in reverse order.
final class ReversedFileSystem: PassThroughFileSystem, @unchecked Sendable {
    // @unchecked: the walker uses it from one thread; tests read the count after the run.
    let real = PosixFileSystem()
    var reads = 0
    func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        reads += 1
        var names: [[CChar]] = []
        try real.readDirectory(directory) { name, length in names.append(Array(UnsafeBufferPointer(start: name, count: length + 1))) }
        for name in names.reversed() { name.withUnsafeBufferPointer { body($0.baseAddress!, name.count - 1) } }
    }
}
