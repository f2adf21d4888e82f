import EventStore
import Events
import Foundation
import Indexing
import TestSupport
import Testing
import Traversal

/// Rescans write only what changed: created, updated, removed and moved entries, checked
/// against mktree's own account of its mutations and against `find`.
@Suite(.serialized)
struct RescanTests {
    /// The events of one run, by type; moves split into files and directories.
    struct RunEvents {
        var created = 0, updatedFiles = 0, updatedDirs = 0, removed = 0, movedFiles = 0, movedDirs = 0, other = 0
    }

    static func runEvents(_ db: String, run: Int) throws -> RunEvents {
        var e = RunEvents()
        for o in try Support.objects(try Support.evindex(["log", "--run", String(run), "--json", "--db", db]).stdout) {
            switch o["type"] as! String {
            case "EntryCreated": e.created += 1
            case "EntryUpdated": if o["kind"] as? String == "dir" { e.updatedDirs += 1 } else { e.updatedFiles += 1 }
            case "EntryRemoved": e.removed += 1
            case "EntryMoved": if o["kind"] as? String == "dir" { e.movedDirs += 1 } else { e.movedFiles += 1 }
            case "JobStarted", "JobCompleted", "DirectoryListed": break
            default: e.other += 1
            }
        }
        return e
    }

    @Test(arguments: [1, 100, 5000])
    func mutationsAreRecordedOneEventEach(_ k: Int) throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            let seed = 30 + k
            try Support.makeTree(root, entries: 30_000, seed: seed)
            // Older than the racy window, unchanged directories are trusted on the rescan:
            // the changed ones must still be found.
            Thread.sleep(forTimeInterval: 2.2)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let before = try FindOracle.identities(root)
            let summary = try Checks.mutate(root, k, seed: seed)
            let after = try FindOracle.identities(root)
            let second = try Support.evindex(["run", root, "--db", db])
            #expect(second.status == 0, "\(second.stderr)")

            // What changed on disk, by find: entries are known by (inode, birth time), so a
            // rename is a move and a freed inode given to a new file is not.
            let net = FindOracle.changes(before: before, after: after)
            let e = try Self.runEvents(db, run: 2)
            #expect(e.created == net.created, "created: \(e) vs \(net)")
            #expect(e.removed == net.removed, "removed: \(e) vs \(net)")
            #expect(e.movedFiles == net.movedFiles, "moved files: \(e) vs \(net)")
            #expect(e.movedDirs == net.movedDirs, "moved dirs: \(e) vs \(net)")
            #expect(e.updatedFiles == net.modifiedFiles, "modified: \(e) vs \(net)")
            #expect(e.other == 0)
            // mktree's own account: exact while its operations do not touch each other's
            // results (with many, a created file may be renamed or deleted again).
            if k <= 100 {
                #expect(
                    net.created == summary["created"] && net.removed == summary["deleted"]
                        && net.movedFiles == summary["renamed"] && net.movedDirs == summary["moved_dirs"]
                        && net.modifiedFiles == summary["modified"], "\(net) vs \(summary)")
            } else {
                #expect(
                    net.created <= summary["created"]! && net.removed <= summary["deleted"]!
                        && net.movedFiles <= summary["renamed"]! && net.movedDirs <= summary["moved_dirs"]!)
            }
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
        }
    }

    /// An unchanged directory outside the racy window is not read again; one whose entry
    /// was added is, even when its mtime is put back (the ctime cannot be).
    /// The database inside the tree it indexes (`evindex run ~` with the default
    /// `~/.local/share/evindex`) is left out: the index is `find` without it, and a rescan
    /// of the unchanged tree writes no entry event (it found `data.mdb` changed each time).
    @Test func theDatabaseInsideItsTreeIsLeftOut() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/home", db = root + "/.local/share/evindex"
            try Support.makeTree(root, entries: 300, seed: 4)
            for _ in 0..<3 {
                let r = try Support.objects(try Support.evindex(["run", root, "--db", db, "--json"]).stdout).last ?? [:]
                #expect(r["status"] as? String == "completed", "\(r)")
            }
            let last = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout).last ?? [:]
            #expect(
                last["created"] as? Int == 0 && last["updated"] as? Int == 0 && last["removed"] as? Int == 0,
                "a rescan of the unchanged tree: \(last)")
            let found = try Support.run(["/usr/bin/find", root, "-mindepth", "1", "-path", db, "-prune", "-o", "-print0"]).stdout
            let listed = try Support.objects(try Support.evindex(["ls", root, "-R", "--json", "--db", db]).stdout).map { Support.pathBytes($0) }
            let expected = Set(found.split(separator: 0).map { Array($0) })
            #expect(Set(listed) == expected, "\(Set(listed).symmetricDifference(expected).count) paths differ from find's")
            #expect(!listed.contains { $0.starts(with: Array(db.utf8)) })
            let why = try Support.evindex(["why", db, "--db", db])
            #expect(why.text.contains("rejected by the rule that leaves out evindex's own database"), "\(why.text)")
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
        }
    }

    @Test func unchangedDirectoriesAreNotReadAgain() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            for d in ["a/b", "c"] { try FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true) }
            try Data(count: 5).write(to: URL(fileURLWithPath: root + "/a/b/f"))
            Thread.sleep(forTimeInterval: 2.2)
            let counting = CountingFileSystem()
            _ = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: counting)
            #expect(counting.reads == 4)
            let second = CountingFileSystem()
            _ = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: second)
            #expect(second.reads == 1, "only the root is read again")

            let attributes = try FileManager.default.attributesOfItem(atPath: root + "/a/b")
            try Data(count: 6).write(to: URL(fileURLWithPath: root + "/a/b/g"))
            try FileManager.default.setAttributes([.modificationDate: attributes[.modificationDate]!], ofItemAtPath: root + "/a/b")
            let third = CountingFileSystem()
            let summary = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: third)
            #expect(summary.counts.created == 1)
            #expect(third.reads == 2, "the root and a/b")

            var full = RunOptions(root: Array(root.utf8), databaseDirectory: db)
            full.trustDirectoryTimes = false
            let fourth = CountingFileSystem()
            _ = try IndexJob.run(full, fileSystem: fourth)
            #expect(fourth.reads == 4)
            try Checks.expectViewsMatchDisk(root, db)
        }
    }

    /// A directory with more changes than one batch holds (regression: the hand-over
    /// released the snapshot the merge was reading).
    @Test func directoryWithThousandsOfChanges() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/big", withIntermediateDirectories: true)
            for i in 0..<1500 { try Data(count: 1).write(to: URL(fileURLWithPath: root + "/big/f\(i)")) }
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            for i in 0..<1500 { try Data(count: 2).write(to: URL(fileURLWithPath: root + "/big/f\(i)")) }
            for i in 0..<1100 { try FileManager.default.createDirectory(atPath: root + "/big/d\(i)", withIntermediateDirectories: false) }
            let r = try Support.evindex(["run", root, "--db", db, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let s = try Support.objects(r.stdout).first ?? [:]
            #expect(s["updated"] as? Int == 1501 && s["created"] as? Int == 1100, "\(s)")
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
        }
    }

    /// `mv d e; mkdir d`: d is a new directory, e keeps what d held.
    @Test func directoryReplacedUnderItsNameWhileTheOldOneMoved() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            let fm = FileManager.default
            try fm.createDirectory(atPath: root + "/d/inner", withIntermediateDirectories: true)
            try Data(count: 3).write(to: URL(fileURLWithPath: root + "/d/inner/f"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try fm.moveItem(atPath: root + "/d", toPath: root + "/e")
            try fm.createDirectory(atPath: root + "/d", withIntermediateDirectories: false)
            try Data(count: 4).write(to: URL(fileURLWithPath: root + "/d/g"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
        }
    }

    /// A listing with an error stays marked incomplete even when its DirectoryListed comes
    /// in a later batch than some of its changes, so the next run reads it again whatever
    /// its mtime says.
    @Test func incompleteListingIsReadAgainByTheNextRun() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/big", withIntermediateDirectories: true)
            for i in 0..<1500 { try Data(count: 1).write(to: URL(fileURLWithPath: root + "/big/f\(i)")) }
            try Data(count: 9).write(to: URL(fileURLWithPath: root + "/big/bad"))
            Thread.sleep(forTimeInterval: 2.2)
            let first = try IndexJob.run(
                RunOptions(root: Array(root.utf8), databaseDirectory: db),
                fileSystem: FaultyFileSystem(faults: ["stat:bad": .ioError]))
            #expect(first.counts.errors == 1)
            let second = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            #expect(second.counts.created == 1)
            try Checks.expectViewsMatchDisk(root, db)
        }
    }

    /// Replaying the whole log after a series of rescans gives the live views.
    @Test func replayEqualsLiveViewsAfterSeveralRescans() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 10_000, seed: 8)
            for k in [0, 40, 41, 300] {
                if k > 0 { _ = try Checks.mutate(root, k, seed: 8) }
                #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            }
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
            // From a snapshot in the middle of the log (an earlier replay's views), the fold
            // of the rest gives the same views as the fold of everything.
            let middle = try Support.objects(try Support.evindex(["replay", "--json", "--from-scratch", "--to", "6000", "--db", db]).stdout)[0]
            #expect(middle["from"] as? String == "scratch")
            let rest = try Support.evindex(["replay", "--json", "--verify", "--db", db])
            #expect(rest.status == 0, "\(rest.stderr)")
            let restObject = try Support.objects(rest.stdout)[0]
            #expect(restObject["from"] as? String == "snapshot" && restObject["snapshot_seq"] as? Int == 6000)
            let scratch = try Support.objects(try Support.evindex(["replay", "--json", "--verify", "--from-scratch", "--db", db]).stdout)[0]
            #expect(scratch["replay_entries_digest"] as? String == restObject["replay_entries_digest"] as? String)
            let runs = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            #expect(runs.count == 4)
            #expect(runs.allSatisfy { $0["status"] as? String == "completed" })
            #expect((runs[3]["moved"] as! Int) > 0)
        }
    }

    /// A file replaced by a directory of the same name, and back again.
    @Test func fileReplacedByDirectoryAndBack() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            let fm = FileManager.default
            try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
            try Data(count: 1000).write(to: URL(fileURLWithPath: root + "/thing"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)

            try fm.removeItem(atPath: root + "/thing")
            try fm.createDirectory(atPath: root + "/thing/inner", withIntermediateDirectories: true)
            try Data(count: 7).write(to: URL(fileURLWithPath: root + "/thing/inner/f"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Checks.expectViewsMatchDisk(root, db)

            try fm.removeItem(atPath: root + "/thing")
            try Data(count: 5).write(to: URL(fileURLWithPath: root + "/thing"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
        }
    }

    /// Two names of one inode are two entries; removing one is a removal, not a move, and
    /// a third name is a creation.
    @Test func hardLinkedInodeUnderSeveralNames() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            let fm = FileManager.default
            try fm.createDirectory(atPath: root + "/d", withIntermediateDirectories: true)
            try Data(count: 300).write(to: URL(fileURLWithPath: root + "/a"))
            try fm.linkItem(atPath: root + "/a", toPath: root + "/d/b")
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Checks.expectViewsMatchDisk(root, db)

            try fm.removeItem(atPath: root + "/a")
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let second = try Self.runEvents(db, run: 2)
            #expect(second.removed == 1 && second.created == 0 && second.movedFiles == 0, "\(second)")
            try Checks.expectViewsMatchDisk(root, db)

            try fm.linkItem(atPath: root + "/d/b", toPath: root + "/c")
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let third = try Self.runEvents(db, run: 3)
            #expect(third.removed == 0 && third.created == 1 && third.movedFiles == 0, "\(third)")
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
        }
    }

    /// A directory that vanishes between its parent's listing and its own: an error event,
    /// the job completes, nothing below it is taken for removed.
    @Test func directoryVanishingWhileBeingRead() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/going/sub", withIntermediateDirectories: true)
            try Data(count: 9).write(to: URL(fileURLWithPath: root + "/going/sub/f"))
            _ = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            let fs = FaultyFileSystem(faults: ["open:going": .noSuchFileOrDirectory])
            let summary = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: fs)
            #expect(summary.status == .completed)
            #expect(summary.counts.errors == 1)
            #expect(summary.counts.removed == 0)
            // Gone for real: the next run removes it, whole subtree in one event.
            try FileManager.default.removeItem(atPath: root + "/going")
            let third = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            #expect(third.counts.removed == 1)
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectReplayMatches(db)
        }
    }

    /// `evindex run` of a folder inside an indexed root rescans that subtree only.
    @Test func runOfASubtreeRescansOnlyThatSubtree() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/inside/deep", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/outside", withIntermediateDirectories: true)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Data(count: 11).write(to: URL(fileURLWithPath: root + "/inside/deep/new"))
            try Data(count: 13).write(to: URL(fileURLWithPath: root + "/outside/unseen"))
            let r = try Support.evindex(["run", root + "/inside", "--db", db, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let s = try Support.objects(r.stdout)[0]
            #expect(s["created"] as? Int == 1)
            #expect(s["entries"] as? Int == 2)
            let rootRow = try Support.objects(try Support.evindex(["du", root, "--depth", "0", "--json", "--db", db]).stdout)[0]
            #expect(rootRow["size"] as? Int == 11)
            #expect(try Support.evindex(["ls", root + "/outside/unseen", "--db", db]).status != 0)
            let roots = Set(try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout).map { $0["root"] as! String })
            #expect(roots == [root, root + "/inside"])
            try Checks.expectReplayMatches(db)
        }
    }

    /// Indexing a folder that holds an indexed root folds that root into the new one.
    @Test func rootIndexedInsideAnotherIsFoldedIn() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/b/c", withIntermediateDirectories: true)
            try Data(count: 3).write(to: URL(fileURLWithPath: root + "/b/c/f"))
            #expect(try Support.evindex(["run", root + "/b", "--db", db]).status == 0)
            try Data(count: 4).write(to: URL(fileURLWithPath: root + "/b/g"))
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            try Checks.expectViewsMatchDisk(root, db)
            try Checks.expectViewsMatchDisk(root + "/b", db)
            try Checks.expectReplayMatches(db)
        }
    }
}

/// Counts directory reads (getdents), passing everything else through.
final class CountingFileSystem: PassThroughFileSystem, @unchecked Sendable {
    // @unchecked: the walker uses it from one thread; tests read the count after the run.
    let real = PosixFileSystem()
    var reads = 0
    func readDirectory(_ directory: DirectoryHandle, _ body: (UnsafePointer<CChar>, Int) -> Void) throws(Errno) {
        reads += 1
        try real.readDirectory(directory, body)
    }
}
