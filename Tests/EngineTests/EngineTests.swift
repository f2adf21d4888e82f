import EventStore
import Events
import Foundation
import Indexing
import LMDB
import Projections
import TestSupport
import Testing
import Traversal

@Suite(.serialized)
struct EngineTests {
    static func events(_ db: String) throws -> [EventRecord] {
        let log = try EventLog(directory: db, create: false)
        var records: [EventRecord] = []
        try log.environment.read { txn in
            try log.forEach(txn) {
                records.append(EventRecord(sequence: $0, run: $1, timeMs: $2, item: $3)); return true
            }
        }
        return records
    }

    /// EACCES, ENOENT between readdir and stat, ELOOP, and EIO part-way through a listing
    /// each become one NonCriticalError; the job completes and the views hold the rest.
    @Test func filesystemFaultsAreRecordedAndTheJobGoesOn() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            for dir in ["locked/inner", "loopy", "broken", "fine"] {
                try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
            }
            try Checks.write(root + "/locked/inner/x", bytes: 1)
            try Checks.write(root + "/vanishing.txt", bytes: 5)
            try Checks.write(root + "/fine/kept.txt", bytes: 10)
            for i in 0..<3 { try Checks.write(root + "/broken/f\(i)", bytes: 100) }

            let fs = FaultyFileSystem(faults: [
                "open:locked": .permissionDenied, "stat:vanishing.txt": .noSuchFileOrDirectory,
                "open:loopy": .tooManySymbolicLinkLevels, "read:broken": .ioError,
            ])
            let summary = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: fs)
            #expect(summary.status == .completed)
            #expect(summary.counts.errors == 4)

            let errors = try Self.events(db).compactMap { r -> (String, Int32, FileOperation)? in
                guard case let .nonCriticalError(_, name, errno, op) = r.event else { return nil }
                return (String(decoding: name, as: UTF8.self), errno, op)
            }.sorted { $0.0 < $1.0 }
            #expect(errors.map(\.0) == ["", "locked", "loopy", "vanishing.txt"])
            #expect(errors.map(\.1) == [EIO, EACCES, ELOOP, ENOENT])
            #expect(errors.map(\.2) == [.readDirectory, .openDirectory, .openDirectory, .stat])

            // `show` groups them by error and operation, with the first path of each.
            let showed = try Support.evindex(["show", "1", "--json", "--db", db])
            #expect(showed.text.components(separatedBy: "\"errors\":").count == 2, "one key `errors`: \(showed.text)")
            let shown = try Support.objects(showed.stdout)[0]
            #expect(shown["errors"] as? Int == 4)
            let groups = (shown["error_groups"] as! [[String: Any]]).map { "\($0["error"]!) \($0["operation"]!) \($0["count"]!)" }
            #expect(groups == ["EACCES opendir 1", "EIO readdir 1", "ELOOP opendir 1", "ENOENT stat 1"])
            #expect((shown["events_by_type"] as! [String: Int])["NonCriticalError"] == 4)
            #expect((shown["error_groups"] as! [[String: Any]]).first?["first_path"] as? String == root + "/locked")

            let log = try EventLog(directory: db, create: false)
            let views = try Views(environment: log.environment, create: false)
            try log.environment.read { txn in
                // The unreadable directories are entries; what is inside them is not.
                guard case let .directory(lockedID, _)? = try views.locate(txn, path: Array((root + "/locked").utf8)) else {
                    Issue.record("locked/ is not in the index"); return
                }
                var inside = 0
                try views.forEachChild(txn, of: lockedID) { _, _ in
                    inside += 1; return true
                }
                #expect(inside == 0)
                #expect(try views.locate(txn, path: Array((root + "/vanishing.txt").utf8)) == nil)
                #expect(try views.locate(txn, path: Array((root + "/fine/kept.txt").utf8)) != nil)
                // The partial listing of broken/ is kept: one of its three files made it.
                guard case let .directory(brokenID, _)? = try views.locate(txn, path: Array((root + "/broken").utf8)) else {
                    Issue.record("broken/ is not in the index"); return
                }
                let broken = try views.directory(txn, brokenID)?.totals
                #expect(broken.map { [$0.size, $0.files, $0.directories] } == [100, 1, 0])
            }

            // A rescan with the faults gone picks up what was missed, and removes nothing.
            let second = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            #expect(second.counts.errors == 0)
            #expect(second.counts.removed == 0)
            let totals = try log.environment.read { txn in try views.directory(txn, 1)?.totals }
            #expect(totals.map { [$0.size, $0.files, $0.directories] } == [316, 6, 5])
            // No view disagrees with a replay of the log, faults and all.
            let verified = try Support.evindex(["verify", "--db", db])
            #expect(verified.status == 0, "\(verified.stderr)")
        }
    }

    /// A directory replaced by a file between its parent's listing and its own opening
    /// (ENOTDIR, or ELOOP for a symlink, from openat with O_DIRECTORY|O_NOFOLLOW): one
    /// error, the job completes, and the next run records the file.
    @Test func directoryReplacedByAFileMidWalk() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/turns/inner", withIntermediateDirectories: true)
            let fs = FaultyFileSystem(faults: ["open:turns": .notDirectory])
            let first = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: fs)
            #expect(first.status == .completed && first.counts.errors == 1)
            try FileManager.default.removeItem(atPath: root + "/turns")
            try Data(count: 8).write(to: URL(fileURLWithPath: root + "/turns"))
            let second = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            #expect(second.counts.updated == 1 && second.counts.errors == 0)
            try Checks.expectViewsMatchDisk(root, db)
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
        }
    }

    /// A failed readdir must not be read as "everything else was deleted".
    @Test func partialListingOnRescanRemovesNothing() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/broken", withIntermediateDirectories: true)
            for i in 0..<5 { try Checks.write(root + "/broken/f\(i)", bytes: 1) }
            _ = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            let fs = FaultyFileSystem(faults: ["read:broken": .ioError])
            let second = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: fs)
            #expect(second.counts.removed == 0)
            #expect(second.counts.errors == 1)
        }
    }

    /// The map grows by itself: a 64 KiB map takes megabytes of writes without failing.
    @Test func mapGrowsWhenFull() throws {
        try Support.withTemporaryDirectory { tmp in
            var options = Environment.Options()
            options.initialMapSize = 64 * 1024
            let env = try Environment(path: tmp, options: options)
            let db = try env.openDatabase("data", create: true)
            var retries = 0
            for batch in 0..<20 {
                try env.write(onRetry: { retries += 1 }) { txn in
                    for i in 0..<2_000 {
                        var key = UInt64(batch * 2_000 + i).bigEndian
                        let value = [UInt8](repeating: UInt8(i & 0xFF), count: 100)
                        try withUnsafeBytes(of: &key) { k in try value.withUnsafeBytes { try txn.put(db, key: k, value: $0) } }
                    }
                }
            }
            #expect(retries > 0)
            #expect(env.mapSize > 64 * 1024)
            #expect(try env.read { try $0.count(db) } == 40_000)
        }
    }

    /// A run whose map fills up many times still completes, and its views equal `find`:
    /// each retried transaction starts again from a clean fold, sequence and counters.
    @Test func runSurvivesAFullMapAgainAndAgain() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try Support.makeTree(root, entries: 5_000, seed: 5)
            var options = RunOptions(root: Array(root.utf8), databaseDirectory: db)
            options.initialMapSize = 128 * 1024
            let summary = try IndexJob.run(options, fileSystem: PosixFileSystem())
            #expect(summary.status == .completed)
            let records = try Self.events(db)
            #expect(records.map(\.sequence) == Array(1...UInt64(records.count)))
            #expect(records.filter { $0.event.type == .entryCreated }.count == Int(summary.counts.entries))
            let found = try FindOracle.entries(root)
            #expect(UInt64(found.count) == summary.counts.entries)
            let du = try Support.objects(try Support.evindex(["du", root, "--depth", "0", "--json", "--db", db]).stdout)
            let oracle = FindOracle.totals(root: Array(root.utf8), entries: found)[Array(root.utf8)]!
            #expect((du[0]["size"] as! NSNumber).int64Value == oracle.0)
            #expect((du[0]["files"] as! NSNumber).int64Value == oracle.1)
            #expect((du[0]["dirs"] as! NSNumber).int64Value == oracle.2)
            #expect(try FileManager.default.attributesOfItem(atPath: db + "/data.mdb")[.size] as! Int > 128 * 1024)
        }
    }

    /// Readers (ls, du, log) open and read while a writer holds its transaction.
    @Test func readersWorkWhileARunIsWriting() throws {
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: root + "/d", withIntermediateDirectories: true)
            try Checks.write(root + "/d/f", bytes: 3)
            _ = try IndexJob.run(RunOptions(root: Array(root.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())

            let writerHolds = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
            let writer = Thread {
                let log = try! EventLog(directory: db, create: true)
                try! log.environment.write { _ in
                    writerHolds.signal()
                    release.wait()
                }
            }
            writer.start()
            writerHolds.wait()
            defer { release.signal() }
            let listing = try Support.evindex(["ls", root, "-R", "--json", "--db", db])
            #expect(listing.status == 0, "\(listing.stderr)")
            #expect(try Support.objects(listing.stdout).count == 2)
            #expect(try Support.evindex(["du", root, "--db", db]).status == 0)
            #expect(try Support.evindex(["log", "--db", db]).status == 0)
        }
    }

    /// A second run on a database is refused at once, naming the holder; nothing is written.
    @Test func concurrentRunIsRefused() throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            _ = try IndexJob.run(RunOptions(root: Array(tmp.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            let before = try Self.events(db).count
            let lock = try WriterLock(directory: db, holder: "pid 4242, indexing /somewhere")
            let r = try Support.evindex(["run", tmp, "--db", db])
            withExtendedLifetime(lock) {}
            #expect(r.status == 2)
            #expect(r.stderr.split(separator: "\n").count == 1)
            #expect(r.stderr.contains("pid 4242"))
            #expect(try Self.events(db).count == before)
        }
    }

    /// A database of a newer schema is refused by every command; nothing is written.
    @Test func newerSchemaDatabaseIsRefused() throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            do {
                let log = try EventLog(directory: db, create: true)
                try log.environment.write { txn in try log.setMetaValue(txn, "schema", EventLog.schemaVersion + 1) }
            }
            let sizeBefore = try FileManager.default.attributesOfItem(atPath: db + "/data.mdb")[.size] as! Int
            for command in [["run", tmp], ["ls", tmp], ["runs"], ["log"]] {
                let r = try Support.evindex(command + ["--db", db])
                #expect(r.status == 2, "\(command): \(r.stderr)")
                #expect(r.stderr.contains("newer"), "\(r.stderr)")
                #expect(r.stderr.split(separator: "\n").count == 1)
            }
            #expect(try FileManager.default.attributesOfItem(atPath: db + "/data.mdb")[.size] as! Int == sizeBefore)
            let log = try? EventLog(directory: db, create: false)
            #expect(log == nil)
        }
    }

    /// `--replayed` before any replay built those views: one line naming the fix, exit 2
    /// (the reader's `ViewError.noReplayedViews`, turned into the CLI's failure).
    @Test func replayedViewsThatWereNeverBuiltAreRefused() throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: tmp + "/tree", withIntermediateDirectories: true)
            #expect(try Support.evindex(["run", tmp + "/tree", "--db", db]).status == 0)
            for command in [["ls", tmp + "/tree", "--replayed"], ["du", tmp + "/tree", "--replayed"]] {
                let r = try Support.evindex(command + ["--db", db])
                #expect(r.status == 2, "\(command): \(r.status)")
                #expect(r.stderr == "evindex: no replayed views in \(db): run `evindex replay --to SEQ` first\n", "\(r.stderr)")
            }
        }
    }

    /// `verify` passes on a sound database and names the first difference when a view
    /// was changed behind the log's back.
    @Test func verifyChecksRecordsAndViews() throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: tmp + "/tree/d", withIntermediateDirectories: true)
            try Checks.write(tmp + "/tree/d/f", bytes: 10)
            _ = try IndexJob.run(RunOptions(root: Array((tmp + "/tree").utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            let good = try Support.evindex(["verify", "--db", db])
            #expect(good.status == 0, "\(good.stderr)")
            // Tamper with the file-path view: an entry no event ever wrote (far enough past
            // the log's end that its listing is stored packed, naming it).
            let log = try EventLog(directory: db, create: true)
            let views = try Views(environment: log.environment)
            try log.environment.write { txn in
                let fold = ViewFold(views: views)
                try Array("ghost".utf8).withUnsafeBytes { name in
                    try fold.applyCreated(
                        txn, sequence: try log.lastSequence(txn) + 1_000, parent: 1, name: name,
                        metadata: EntryMetadata(
                            kind: .file, mode: 0o100644, inode: 9, device: 9, size: 1, mtimeNs: 0, ctimeNs: 0))
                }
                try fold.flush(txn, lastSequence: try views.lastSequence(txn))
            }
            let bad = try Support.evindex(["verify", "--db", db])
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("ghost"), "\(bad.stderr)")
        }
    }

    /// A full disk fails the run in one clear line and leaves the database readable; once
    /// there is space again, the next run resumes the failed one and completes it.
    @Test func fullDiskFailsTheRunAndItResumesLater() throws {
        guard getuid() == 0 else { return }
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", mnt = tmp + "/mnt", db = mnt + "/db"
            try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
            let mounted = try Support.run(["/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt])
            try #require(mounted.status == 0, "mounting a small tmpfs as root: \(mounted.stderr)")
            defer { _ = try? Support.run(["/bin/umount", mnt]) }
            try Support.makeTree(root, entries: 20_000, seed: 9)

            let failed = try Support.evindex(["run", root, "--db", db])
            #expect(failed.status == 1)
            #expect(failed.stderr.split(separator: "\n").count == 1 && failed.stderr.contains("is full"), "\(failed.stderr)")
            let runs = try Support.evindex(["runs", "--json", "--db", db])
            #expect(runs.status == 0, "the database stays readable: \(runs.stderr)")

            #expect(try Support.run(["/bin/mount", "-o", "remount,size=64m", mnt]).status == 0)
            let resumed = try Support.evindex(["run", root, "--db", db])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            let after = try Support.objects(try Support.evindex(["runs", "--json", "--db", db]).stdout)
            #expect(after.count == 1 && after[0]["status"] as? String == "completed", "\(after)")
            #expect(after[0]["message"] == nil, "a completed run keeps no failure message: \(after)")
            try Checks.expectEachEntryCreatedOnce(db, entries: try FindOracle.entries(root).count)
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
        }
    }

    /// On a full disk, `verify`, `replay`, `import` and a first `run` into a new database
    /// fail in one line saying the disk is full (they said "Input/output error", and a new
    /// database's lock file was a SIGBUS); with space again all of them work.
    @Test func fullDiskIsSaidByEveryWriter() throws {
        guard getuid() == 0 else { return }
        try Support.withTemporaryDirectory { tmp in
            let root = tmp + "/tree", mnt = tmp + "/mnt", db = mnt + "/db", export = tmp + "/run1.ndjson"
            try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
            try #require(try Support.run(["/bin/mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]).status == 0)
            defer { _ = try? Support.run(["/bin/umount", mnt]) }
            try Support.makeTree(root, entries: 3_000, seed: 3)
            #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
            let exported = try Support.evindex(["export", "1", "--db", db])
            try exported.stdout.write(to: URL(fileURLWithPath: export))
            _ = try Support.run(["/bin/dd", "if=/dev/zero", "of=" + mnt + "/fill", "bs=4k"])
            let writers: [[String]] = [
                ["verify", "--db", db], ["verify", "--json", "--db", db], ["replay", "--db", db], ["replay", "--from-scratch", "--db", db],
                ["import", export, "--db", mnt + "/new"], ["run", root, "--db", mnt + "/other"],
            ]
            for command in writers {
                let r = try Support.evindex(command)
                #expect(r.status == 1, "\(command): exit \(r.status)")
                #expect(
                    r.stderr.hasPrefix("evindex: ") && r.stderr.contains("is full") && r.stderr.split(separator: "\n").count == 1,
                    "\(command): \(r.stderr.prefix(400))")
            }
            #expect(try Support.evindex(["ls", root, "--db", db]).status == 0, "the database stays readable")
            try FileManager.default.removeItem(atPath: mnt + "/fill")
            #expect(try Support.evindex(["verify", "--db", db]).status == 0)
            #expect(try Support.evindex(["import", export, "--db", mnt + "/new"]).status == 0)
            #expect(try Support.evindex(["verify", "--db", mnt + "/new"]).status == 0)
        }
    }

    /// Files that are not an LMDB database, or a truncated one, are refused in one line.
    /// "cut short" (8,292 bytes) and "halved" crashed every command with SIGBUS before
    /// the meta pages were checked against the file's size (issue 21, section 2).
    @Test(arguments: ["garbage", "truncated", "cut short", "halved"])
    func damagedDatabaseFileIsRefused(_ damage: String) throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            try FileManager.default.createDirectory(atPath: tmp + "/tree", withIntermediateDirectories: true)
            if damage == "halved" { try Support.makeTree(tmp + "/tree/t", entries: 5000, seed: 3) }
            _ = try IndexJob.run(RunOptions(root: Array((tmp + "/tree").utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            let size = try FileManager.default.attributesOfItem(atPath: db + "/data.mdb")[.size] as! Int
            switch damage {
            case "garbage": try Data(repeating: 0x5A, count: 64 * 1024).write(to: URL(fileURLWithPath: db + "/data.mdb"))
            case "truncated": #expect(truncate(db + "/data.mdb", 4096) == 0)
            case "cut short": #expect(truncate(db + "/data.mdb", 8292) == 0)
            default: #expect(truncate(db + "/data.mdb", off_t(size / 2)) == 0)
            }
            for command in [["ls", tmp + "/tree"], ["runs"], ["run", tmp + "/tree"], ["verify"], ["log"]] {
                let r = try Support.evindex(command + ["--db", db])
                #expect(r.status == 1 || r.status == 2, "\(command) \(damage): \(r.status)")
                #expect(r.stderr.hasPrefix("evindex: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            }
        }
    }

    /// A flipped byte in a stored record is reported by `evindex log` with its sequence.
    @Test func corruptStoredRecordIsReportedWithItsSequence() throws {
        try Support.withTemporaryDirectory { tmp in
            let db = tmp + "/db"
            try Checks.write(tmp + "/f", bytes: 1)
            _ = try IndexJob.run(RunOptions(root: Array(tmp.utf8), databaseDirectory: db), fileSystem: PosixFileSystem())
            let log = try EventLog(directory: db, create: true)
            try log.environment.write { txn in
                var value: [UInt8] = []
                // The block that starts with record 2 (its listing of the root).
                try log.forEachStoredValue(txn, from: 2) { _, v in
                    value = Array(v); return false
                }
                value[value.count / 2] ^= 0x01
                try log.overwriteForTesting(txn, sequence: 2, value: value)
            }
            let r = try Support.evindex(["log", "--db", db])
            #expect(r.status == 1)
            #expect(r.stderr.contains("record 2 is corrupt"), "\(r.stderr)")
            #expect(r.text.hasPrefix("1 "))
            let v = try Support.evindex(["verify", "--db", db])
            #expect(v.status == 1)
            #expect(v.stderr.contains("record 2 is corrupt"), "\(v.stderr)")
        }
    }
}
