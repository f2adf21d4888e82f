import EventStore
import Foundation
import LMDB
import TestSupport
import Testing

/// `verify` holds the runs table to the log and compares the views only a rescan reads
/// (issue 21, section 2): a flipped start time in a run's row passed before.
@Suite(.serialized)
struct VerifyTests {
    /// A tree indexed twice, the second run after a change.
    static func makeDatabase(_ tmp: String) throws -> String {
        let root = tmp + "/tree", db = tmp + "/db"
        try Support.makeTree(root, entries: 200, seed: 8)
        #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
        try Checks.write(root + "/new-file", bytes: 10)
        #expect(try Support.evindex(["run", root, "--db", db]).status == 0)
        let sound = try Support.evindex(["verify", "--db", db])
        #expect(sound.status == 0 && sound.text.contains("2 runs as the log says"), "\(sound.text) \(sound.stderr)")
        return db
    }

    static func expectVerifyFails(_ db: String, saying words: String) throws {
        let r = try Support.evindex(["verify", "--db", db])
        #expect(r.status == 1, "\(r.text)")
        #expect(r.stderr.contains(words) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test(arguments: ["start time", "root directory", "counts", "end time", "status", "last event", "first event"])
    func aRunRowThatDisagreesWithItsEventsFailsVerify(_ damage: String) throws {
        try Support.withTemporaryDirectory { tmp in
            let db = try Self.makeDatabase(tmp)
            let log = try EventLog(directory: db, create: false)
            try log.environment.write { txn in
                var row = try log.allRuns(txn)[0]
                switch damage {
                case "start time": row.startedMs += 1
                case "root directory": row.rootDirID += 7
                case "counts": row.counts.files += 1
                case "end time": row.endedMs -= 1000
                case "status": row.status = .paused
                case "last event": row.lastSequence -= 1
                default: row.firstSequence += 1
                }
                try log.putRun(txn, row)
            }
            try Self.expectVerifyFails(db, saying: "the runs table differs from the log: run 1")
        }
    }

    /// The directory-inode view (how a rescan recognizes a moved directory) and the
    /// incomplete listings (which a rescan must read again) are compared with a replay.
    @Test(arguments: ["directory inodes", "incomplete listings"])
    func aDamagedRescanViewFailsVerify(_ view: String) throws {
        try Support.withTemporaryDirectory { tmp in
            let db = try Self.makeDatabase(tmp)
            let log = try EventLog(directory: db, create: false)
            try log.environment.write { txn in
                if view == "directory inodes" {
                    let inodes = try txn.openDatabase("dirInodes", create: false)
                    let key: [UInt8]? = try txn.withCursor(inodes) { c in try c.first().map { Array($0.key) } }
                    #expect(try txn.delete(inodes, key: try #require(key)))
                } else {
                    let incomplete = try txn.openDatabase("incomplete", create: false)
                    try txn.put(incomplete, key: [0, 0, 0, 0, 0, 0, 0, 2], value: [])
                }
            }
            try Self.expectVerifyFails(db, saying: "the views differ from a replay of the log: first at \(view)")
        }
    }
}
