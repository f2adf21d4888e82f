import EventStore
import Events
import Foundation
import Testing

/// Checks of an index against independent oracles that several layers' suites share:
/// `find` for the views, `evindex replay --verify` for the log, mktree for mutations.
public enum Checks {
    /// Writes `bytes` zero bytes to a new file at `path`.
    public static func write(_ path: String, bytes: Int) throws {
        try Data(count: bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The views equal `find` below `root`: every entry's kind, size, inode, mtime, and
    /// every directory's totals.
    public static func expectViewsMatchDisk(_ root: String, _ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let found = try FindOracle.entries(root)
        let listing = try Support.evindex(["ls", root, "-R", "--json", "--db", db])
        #expect(listing.status == 0, "\(listing.stderr)", sourceLocation: sourceLocation)
        let listed = try Support.objects(listing.stdout).map { o in
            FindEntry(
                path: Support.pathBytes(o), kind: o["kind"] as! String,
                size: (o["size"] as! NSNumber).uint64Value, inode: (o["inode"] as! NSNumber).uint64Value,
                mtimeNs: (o["mtime_ns"] as! NSNumber).int64Value)
        }
        let missing = Set(found).subtracting(listed), extra = Set(listed).subtracting(found)
        #expect(
            missing.isEmpty && extra.isEmpty && listed.count == found.count,
            "missing \(missing.prefix(3).map { String(decoding: $0.path, as: UTF8.self) }), extra \(extra.prefix(3).map { String(decoding: $0.path, as: UTF8.self) })",
            sourceLocation: sourceLocation)
        let oracle = FindOracle.totals(root: Array(root.utf8), entries: found)
        let du = try Support.objects(try Support.evindex(["du", root, "--depth", "1000", "--json", "--db", db]).stdout)
        #expect(du.count == oracle.count, sourceLocation: sourceLocation)
        let wrong = du.filter { row in
            guard let want = oracle[Support.pathBytes(row)] else { return true }
            return want != (
                (row["size"] as! NSNumber).int64Value, (row["files"] as! NSNumber).int64Value,
                (row["dirs"] as! NSNumber).int64Value
            )
        }
        #expect(wrong.isEmpty, "du differs at \(wrong.prefix(3).map { $0["path"] as? String ?? "?" })", sourceLocation: sourceLocation)
    }

    public static func expectReplayMatches(_ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try Support.evindex(["replay", "--verify", "--db", db])
        #expect(r.status == 0, "replay: \(r.stderr)", sourceLocation: sourceLocation)
    }

    public static func mutate(_ root: String, _ k: Int, seed: Int) throws -> [String: Int] {
        let r = try Support.run([
            "/usr/bin/env", "python3", Support.fixtures.appendingPathComponent("mktree.py").path, root,
            "--mutate", String(k), "--seed", String(seed),
        ])
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONSerialization.jsonObject(with: r.stdout) as! [String: Int]
    }

    /// Every entry below the root is created exactly once by run 1, whatever interrupted it.
    public static func expectEachEntryCreatedOnce(_ db: String, entries: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let log = try EventLog(directory: db, create: false)
        var keys = Set<[UInt8]>()
        var duplicates = 0
        try log.environment.read { txn in
            try log.forEach(txn) { seq, run, time, item in
                let r = EventRecord(sequence: seq, run: run, timeMs: time, item: item)
                if case let .entryCreated(parent, name, _) = r.event, r.run == 1 {
                    var key = withUnsafeBytes(of: parent) { Array($0) }
                    key += name
                    if !keys.insert(key).inserted { duplicates += 1 }
                }
                return true
            }
        }
        #expect(duplicates == 0, sourceLocation: sourceLocation)
        #expect(keys.count == entries, sourceLocation: sourceLocation)
    }
}
