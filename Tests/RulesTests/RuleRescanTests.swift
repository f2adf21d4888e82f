import Foundation
import Indexing
import Synchronization
import TestSupport
import Testing
import Traversal

@testable import Rules

/// Pauses the run (raises its stop flag) once it has opened `after` directories.
struct PausingFileSystem: PassThroughFileSystem {
    let real = PosixFileSystem()
    let stop: StopFlag
    let after: Int
    let opened = Counter()

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    func openDirectory(_ parent: DirectoryHandle, _ name: UnsafePointer<CChar>) throws(Errno) -> DirectoryHandle {
        if opened.value.add(1, ordering: .relaxed).newValue == after { stop.set() }
        return try real.openDirectory(parent, name)
    }
}

/// Rules across runs: rescans after the rules or ignore files change, paused runs resumed
/// with their rules, and diffs of runs whose rules differ.
extension RulesTests {
    // MARK: - Rescans with rules

    /// Changing the rules records only what the change changed (rejected names leave,
    /// accepted ones arrive); the note says the rules differ; an unchanged rescan with
    /// rules writes nothing; the views always equal find's and a replay of the log.
    @Test func rescansFollowRuleChangesAndGitignoreEdits() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 3000, seed: 5)
            let noLogs = ["(", "-name", "*.log", ")", "-prune", "-o", "-print"]
            func run(_ flags: [String]) throws -> [String: Any] {
                let r = try Support.evindex(["run", root, "--db", db, "--json"] + flags)
                #expect(r.status == 0, "\(r.stderr)")
                return try Support.objects(r.stdout).first ?? [:]
            }
            _ = try run(["--reject", "*.log"])
            let logs = try Self.find(root, ["-name", "*.log"]).count
            #expect(logs > 10)
            Self.expectSame(try Self.indexed(root, db), try Self.find(root, noLogs), "first run")
            let unchanged = try run(["--reject", "*.log"])
            #expect((unchanged["last_seq"] as! Int) - (unchanged["first_seq"] as! Int) == 1, "an unchanged rescan wrote entry events")
            let all = try Support.evindex(["run", root, "--db", db, "--json"])
            #expect(all.stderr.contains("note: the rules differ from run 2's: [reject *.log] before, no rules now"), "\(all.stderr)")
            let allSummary = try Support.objects(all.stdout)[0]
            #expect(allSummary["created"] as? Int == logs)
            Self.expectSame(try Self.indexed(root, db), try Self.find(root, []), "without rules")
            let again = try run(["--reject", "*.log"])
            #expect(again["removed"] as? Int == logs)
            #expect(try Self.rejections(root, db, run: 4).count == logs)
            Self.expectSame(try Self.indexed(root, db), try Self.find(root, noLogs), "rules again")

            // A .gitignore edited in place (its directory's times unchanged) is read again.
            let repo = tmp + "/repo"
            try FileManager.default.createDirectory(atPath: repo + "/d", withIntermediateDirectories: true)
            try Self.git(repo, ["init", "-q"])
            try "*.o\n".write(toFile: repo + "/.gitignore", atomically: false, encoding: .utf8)
            for f in ["/repo/d/a.o", "/repo/d/b.c"] { _ = FileManager.default.createFile(atPath: tmp + f, contents: Data()) }
            let rdb = tmp + "/rdb"
            #expect(try Support.evindex(["run", repo, "--gitignore", "--db", rdb]).status == 0)
            Self.expectSame(try Self.indexed(repo, rdb), [".gitignore", "d/", "d/b.c"], "gitignore first")
            sleep(3)  // past the racy window, so the directories are trusted
            #expect(try Support.evindex(["run", repo, "--gitignore", "--db", rdb]).status == 0)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: repo + "/.gitignore"))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data("*.c\n".utf8))
            try handle.close()
            #expect(try Support.evindex(["run", repo, "--gitignore", "--db", rdb]).status == 0)
            Self.expectSame(try Self.indexed(repo, rdb), [".gitignore", "d/", "d/a.o"], "gitignore edited")
            let why = try Support.evindex(["why", repo + "/d/b.c", "--db", rdb])
            #expect(why.text.contains("rejected by gitignore \(repo)/.gitignore:1:*.c"), "\(why.text)")
            for d in [db, rdb] {
                let verify = try Support.evindex(["verify", "--db", d])
                #expect(verify.status == 0, "\(verify.text) \(verify.stderr)")
            }
        }
    }

    // MARK: - Pause and resume

    /// A paused run with rules resumes with them (same run, each entry created once, the
    /// rejected ones never); started again with other rules it is abandoned, not mixed.
    @Test func pausedRunsResumeOnlyWithTheirRules() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree"
            try Support.makeTree(root, entries: 20_000, seed: 4)
            func options(_ db: String, _ glob: String, stop: StopFlag = StopFlag()) throws -> RunOptions {
                var o = RunOptions(root: Array(root.utf8), databaseDirectory: db)
                var rules = RuleSet()
                try rules.add(keyword: "reject", argument: glob)
                o.rules = rules
                o.stop = stop
                return o
            }
            let prune = { (glob: String) in ["(", "-name", glob, ")", "-prune", "-o", "-print"] }
            let db = tmp + "/db"
            let stop = StopFlag()
            let paused = try IndexJob.run(try options(db, "*.log", stop: stop), fileSystem: PausingFileSystem(stop: stop, after: 300))
            try #require(paused.status == .paused)
            let resumed = try IndexJob.run(try options(db, "*.log"), fileSystem: PosixFileSystem())
            #expect(resumed.status == .completed && resumed.run == paused.run && resumed.abandonedForRules == nil)
            let expected = try Self.find(root, prune("*.log"))
            Self.expectSame(try Self.indexed(root, db), expected, "resumed with its rules")
            try Checks.expectEachEntryCreatedOnce(db, entries: expected.count)

            let db2 = tmp + "/db2"
            let stop2 = StopFlag()
            _ = try IndexJob.run(try options(db2, "*.log", stop: stop2), fileSystem: PausingFileSystem(stop: stop2, after: 300))
            let other = try IndexJob.run(try options(db2, "*.md"), fileSystem: PosixFileSystem())
            #expect(other.abandonedForRules == 1 && other.run == 2 && other.status == .completed)
            Self.expectSame(try Self.indexed(root, db2), try Self.find(root, prune("*.md")), "restarted with other rules")
            let runs = try Support.objects(Support.evindex(["runs", "--json", "--db", db2]).stdout)
            #expect(runs.first?["status"] as? String == "abandoned", "\(runs)")
        }
    }

    /// A `--gitignore` run paused part-way and resumed agrees with git as if it had not
    /// stopped (the resumed run judges the names it recorded again, so the `.git` and
    /// `.gitignore` among them still shape the rules), and its views equal a replay.
    @Test(arguments: [2, 4, 6])
    func pausedGitignoreRunResumesWithGitsRules(_ pauseAfter: Int) throws {
        try Support.withTemporaryDirectory { tmp in
            let dest = tmp + "/case"
            let made = try Support.run(["/usr/bin/env", "python3", Self.cases, "make", dest, "--seed", "57"])
            try #require(made.status == 0, "\(made.stderr)")
            let db = tmp + "/db"
            var environment = ProcessInfo.processInfo.environment
            environment["HOME"] = dest + "/home"
            environment["XDG_CONFIG_HOME"] = nil
            func options(_ stop: StopFlag) throws -> RunOptions {
                var o = RunOptions(root: Array((dest + "/tree").utf8), databaseDirectory: db)
                try o.rules.add(keyword: "gitignore", argument: "on")
                o.environment = environment
                o.stop = stop
                o.threads = 1
                return o
            }
            let stop = StopFlag()
            let first = try IndexJob.run(try options(stop), fileSystem: PausingFileSystem(stop: stop, after: pauseAfter))
            try #require(first.status == .paused)
            let resumed = try IndexJob.run(try options(StopFlag()), fileSystem: PosixFileSystem())
            #expect(resumed.status == .completed && resumed.run == first.run)
            let check = try Self.checkAgainstGit(dest, db: db, tmp: tmp)
            #expect(check.status == 0, "\(check.text)")
            let verify = try Support.evindex(["verify", "--db", db])
            #expect(verify.status == 0, "\(verify.text) \(verify.stderr)")
        }
    }

    /// A rescan that starts rejecting an indexed name, paused and then abandoned, leaves
    /// no rejection beside the entry: the next rescans of the unchanged tree write nothing.
    @Test func abandonedRescanLeavesNoStaleRejection() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 3000, seed: 12)
            let path = Array(root.utf8)
            _ = try IndexJob.run(RunOptions(root: path, databaseDirectory: db), fileSystem: PosixFileSystem())
            let stop = StopFlag()
            var rejecting = RunOptions(root: path, databaseDirectory: db)
            try rejecting.rules.add(keyword: "reject", argument: "*.log")
            rejecting.stop = stop
            rejecting.threads = 1
            let paused = try IndexJob.run(rejecting, fileSystem: PausingFileSystem(stop: stop, after: 40))
            try #require(paused.status == .paused)
            _ = try IndexJob.run(RunOptions(root: path, databaseDirectory: db), fileSystem: PosixFileSystem())  // abandons it
            let unchanged = try IndexJob.run(RunOptions(root: path, databaseDirectory: db), fileSystem: PosixFileSystem())
            #expect(
                unchanged.lastSequence - unchanged.firstSequence == 1,
                "an unchanged rescan wrote \(unchanged.lastSequence - unchanged.firstSequence + 1) events")
            #expect(unchanged.counts.entries == UInt64(try FindOracle.entries(root).count))
            let verify = try Support.evindex(["verify", "--db", db])
            #expect(verify.status == 0, "\(verify.text) \(verify.stderr)")
            Self.expectSame(try Self.indexed(root, db), try Self.find(root, []), "after the abandoned rescan")
        }
    }

    // MARK: - Diff

    /// Runs with different rules diff with the rule change first; a run with rules and its
    /// unchanged rescan (which records no rejection again) diff as equivalent.
    @Test func diffShowsTheRuleChangeFirstAndRejectionsAreState() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 2000, seed: 8)
            for flags in [["--reject", "*.log", "--gitignore"], ["--reject", "*.log", "--gitignore"], ["--reject", "*.tmp"]] {
                #expect(try Support.evindex(["run", root, "--db", db] + flags).status == 0)
            }
            #expect(try Self.rejections(root, db, run: 2).isEmpty, "an unchanged rescan recorded rejections again")
            let same = try Support.evindex(["diff", "1", "2", "--db", db])
            #expect(same.status == 0, "\(same.text) \(same.stderr)")
            let changed = try Support.evindex(["diff", "2", "3", "--db", db])
            #expect(changed.status == 1, "\(changed.stderr)")
            let lines = changed.text.split(separator: "\n").map(String.init)
            let firstDifference = lines.firstIndex { !$0.hasPrefix("A: ") && !$0.hasPrefix("B: ") }
            #expect(firstDifference.map { lines[$0] } == "options differ:", "\(lines.prefix(6))")
            #expect(changed.text.contains("  A: [gitignore on; reject *.log]\n  B: [reject *.tmp]\n"), "\(changed.text.prefix(400))")
            let json = try Support.objects(Support.evindex(["diff", "2", "3", "--json", "--db", db]).stdout)
            // After the header naming the two runs, the options come first.
            #expect(json.count > 1 && json[1]["type"] as? String == "options", "\(json.prefix(2))")
            #expect(json.count > 1 && json[1]["b"] as? String == "reject *.tmp")
            // Every .log file run 2 rejected by its glob is a rejection difference: rejected
            // by `reject *.log` in A, indexed in B.
            let logRejections = Set(try Self.rejections(root, db, run: 1).filter { $0.value == "reject *.log" }.keys)
            let rows = json.filter { $0["rule_a"] as? String == "reject *.log" }
            #expect(logRejections.count > 10)
            #expect(Set(rows.map { String(decoding: Support.pathBytes($0), as: UTF8.self) }) == logRejections)
            #expect(rows.allSatisfy { $0["indexed_b"] as? Bool == true && $0["indexed_a"] as? Bool == false })

            // A rescan with rules travels with its base's rejections: export, import, diff.
            let exported = try Support.evindex(["export", "2", "--db", db])
            #expect(exported.status == 0)
            try exported.stdout.write(to: URL(fileURLWithPath: tmp + "/run2.ndjson"))
            #expect(try Support.evindex(["import", tmp + "/run2.ndjson", "--db", tmp + "/imported"]).status == 0)
            let across = try Support.evindex(["diff", "--logs", db, tmp + "/imported", "2", "2"])
            #expect(across.status == 0, "\(across.text.suffix(600))")
        }
    }
}
