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

    /// What GNU du prints for each directory below `root` alone (`du -sx -B1 DIR` and
    /// `du -sx --apparent-size -B1 DIR`, one du per directory: du counts a hard link once
    /// across all its arguments, so one call for all would not be the same question), with
    /// the directory's inode.
    public static func duFigures(_ root: String) throws -> [[UInt8]: (inode: UInt64, disk: Int64, apparent: Int64)] {
        let script =
            #"find "$1" -xdev -type d -print0 | xargs -0 -n 64 sh -c 'for d; do stat -c %i "$d" | tr "\n" "\0"; du -sx -B1 -0 "$d"; du -sx --apparent-size -B1 -0 "$d"; done' _"#
        let r = try Support.run(["/bin/bash", "-c", script, "_", root])
        #expect(r.status == 0, "du: \(r.stderr)")
        var figures: [[UInt8]: (inode: UInt64, disk: Int64, apparent: Int64)] = [:]
        let records = r.stdout.split(separator: 0, omittingEmptySubsequences: true).map(Array.init)
        func parse(_ record: [UInt8]) -> (Int64, [UInt8]) {
            let tab = record.firstIndex(of: UInt8(ascii: "\t"))!
            return (Int64(String(decoding: record[..<tab], as: UTF8.self))!, Array(record[(tab + 1)...]))
        }
        var i = 0
        while i + 2 < records.count {
            let inode = UInt64(String(decoding: records[i], as: UTF8.self))!
            let (disk, path) = parse(records[i + 1]), (apparent, again) = parse(records[i + 2])
            #expect(path == again)
            figures[path] = (inode, disk, apparent)
            i += 3
        }
        return figures
    }

    /// Every directory's `disk_bytes` and `apparent_bytes` (from `evindex du --json`) equal
    /// what GNU du prints for that directory alone (`duFigures`).
    public static func expectSizesMatchDu(_ root: String, _ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let oracle = try duFigures(root)
        let du = try Support.evindex(["du", root, "--depth", "100000", "--json", "--db", db])
        #expect(du.status == 0, "\(du.stderr)", sourceLocation: sourceLocation)
        let rows = try Support.objects(du.stdout)
        #expect(
            rows.count == oracle.count && !rows.isEmpty, "evindex lists \(rows.count) directories, find \(oracle.count)",
            sourceLocation: sourceLocation)
        var wrong: [String] = []
        for row in rows {
            let path = Support.pathBytes(row)
            let disk = (row["disk_bytes"] as! NSNumber).int64Value, apparent = (row["apparent_bytes"] as! NSNumber).int64Value
            guard let want = oracle[path] else {
                wrong.append("\(String(decoding: path, as: UTF8.self)) is not a directory du knows")
                continue
            }
            if want.disk != disk || want.apparent != apparent {
                wrong.append("\(String(decoding: path, as: UTF8.self)): du \(want.disk)/\(want.apparent), evindex \(disk)/\(apparent)")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) directories differ from du (disk/apparent): \(wrong.prefix(4))", sourceLocation: sourceLocation)
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
