import EventStore
import Events
import Projections

/// Rule: a directory's growth since a run is its du figures now minus its figures at the
/// run's stop, read from the directory-size history (`SizeHistory`), never from a second
/// fold: the cost follows what changed since, not the size of the tree. A directory new
/// since then grew from 0.
///
/// The counts beside it are of the names created and removed since, below it, from the
/// log's events after the stop, attributed through the directories as they are now (a
/// removed directory counts as one name; what was below it went with it).
public struct DirectoryGrowth: Sendable {
    public var now: DirectoryRecord
    /// Nil when the directory did not exist then.
    public var then: DirectoryRecord?
    public var created: Int64 = 0
    public var removed: Int64 = 0

    /// Signed: a change of 2^63 bytes or more (sparse files) does not fit and wraps.
    public var diskDelta: Int64 { Int64(bitPattern: now.duDiskBytes &- (then?.duDiskBytes ?? 0)) }
    public var apparentDelta: Int64 { Int64(bitPattern: now.duApparentBytes &- (then?.duApparentBytes ?? 0)) }
}

public enum Growth {
    /// Where "then" is: the stop of run `id`.
    public static func stop(_ snapshot: IndexSnapshot, run id: UInt32) throws -> (RunRecord, SizeEpoch) {
        guard let run = try snapshot.run(id) else { throw HistoryError("no run \(id) in the database") }
        guard let epoch = try snapshot.sizeEpoch(at: run.lastSequence) else {
            throw HistoryError(
                "run \(id) has not stopped (it is \(run.status.name)\(run.status == .running ? " or was cut off" : "")): its sizes at an end are not known"
            )
        }
        return (run, epoch)
    }

    /// Where "then" is: the stop of the last run that ended at or before `timeMs`.
    public static func stop(_ snapshot: IndexSnapshot, atOrBefore timeMs: Int64, named text: String) throws -> (RunRecord, SizeEpoch) {
        let ended = try snapshot.runs().filter { $0.endedMs > 0 && $0.endedMs <= timeMs }
        for run in ended.sorted(by: { $0.lastSequence > $1.lastSequence }) {
            if let epoch = try snapshot.sizeEpoch(at: run.lastSequence) { return (run, epoch) }
        }
        throw HistoryError("no run had ended by \(text)")
    }

    /// Each directory's growth since `epoch`: `dirIDs` with their rows now.
    public static func growth(
        _ snapshot: IndexSnapshot, since epoch: SizeEpoch, of rows: [(dirID: UInt64, record: DirectoryRecord)]
    ) throws -> [DirectoryGrowth] {
        let counts = try changeCounts(snapshot, since: epoch, wanted: Set(rows.map(\.dirID)))
        return try rows.map { row in
            var g = DirectoryGrowth(now: row.record, then: try snapshot.directory(row.dirID, asOf: epoch))
            if let c = counts[row.dirID] { (g.created, g.removed) = c }
            return g
        }
    }

    /// Names created and removed since `epoch` below each directory of `wanted`.
    static func changeCounts(_ snapshot: IndexSnapshot, since epoch: SizeEpoch, wanted: Set<UInt64>) throws -> [UInt64: (Int64, Int64)] {
        var direct: [UInt64: (created: Int64, removed: Int64)] = [:]
        try snapshot.forEachRecord(from: epoch.start + 1) { record in
            switch record.event {
            case let .entryCreated(parent, _, _): direct[parent, default: (0, 0)].created += 1
            case let .entryRemoved(parent, _): direct[parent, default: (0, 0)].removed += 1
            default: break
            }
            return true
        }
        // Up the directories as they are now; a parent gone since is inside a removed name.
        var parents: [UInt64: UInt64?] = [:]
        func parent(_ id: UInt64) throws -> UInt64? {
            if let known = parents[id] { return known }
            let p = try snapshot.directory(id).map(\.parent)
            parents[id] = p
            return p
        }
        var result: [UInt64: (Int64, Int64)] = [:]
        for (dir, c) in direct {
            guard try parent(dir) != nil else { continue }
            var id = dir
            var steps = 0
            while id != 0 {
                if wanted.contains(id) {
                    let r = result[id] ?? (0, 0)
                    result[id] = (r.0 + c.created, r.1 + c.removed)
                }
                guard let p = try parent(id) else { break }
                id = p
                steps += 1
                if steps > 100_000 { throw ViewError.corrupt("directory \(dir) has a parent cycle") }
            }
        }
        return result
    }
}
