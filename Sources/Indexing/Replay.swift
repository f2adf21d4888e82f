import EventStore
import Events
import LMDB
import Projections

/// Rebuilds views from the log alone, into a second set of views in the same database,
/// and compares them with the live ones.
public enum Replay {
    /// The prefix of the views a replay builds (`replay.entries`, `replay.dirs`, …).
    public static let prefix = "replay."

    public struct Result: Sendable {
        /// The sequence the fold started after (0: from scratch).
        public var startedAfter: UInt64
        public var events: UInt64
        public var lastSequence: UInt64
        public var seconds: Double
        public var eventsPerSecond: Double { seconds > 0 ? Double(events) / seconds : 0 }
    }

    /// Folds the log through `through` into `target`.
    ///
    /// - Parameter fromSnapshot: when `target` already holds views folded up to a sequence
    ///   not past `through` (an earlier replay: its snapshot), fold only the events after
    ///   it; otherwise, and with false, start from empty views and sequence 1.
    /// - Throws: `DecodeError` for a corrupt or newer record (naming its sequence).
    public static func rebuild(log: EventLog, into target: Views, through: UInt64 = .max, fromSnapshot: Bool = false) throws -> Result {
        let started = monotonicSeconds()
        let fold = ViewFold(views: target)
        let snapshot = fromSnapshot ? try log.environment.read { try target.lastSequence($0) } : 0
        let startAfter = snapshot <= through ? snapshot : 0
        if startAfter == 0 {
            try log.environment.write { txn in try target.clear(txn) }
        }
        fold.didCommit()
        var next: UInt64 = startAfter + 1
        var events: UInt64 = 0
        var last: UInt64 = startAfter
        // One commit per chunk of events keeps the write transaction's dirty pages bounded.
        let chunk: UInt64 = 200_000
        while true {
            let lastBefore = last
            let (folded, reachedEnd) = try log.environment.write(onRetry: { fold.rollBack(); last = lastBefore }) { txn -> (UInt64, Bool) in
                var count: UInt64 = 0
                var end = true
                try log.forEachRecord(txn, from: next, through: through) { record in
                    if count == chunk { end = false; return false }
                    try fold.apply(txn, record)
                    last = record.sequence
                    count += 1
                    return true
                }
                try fold.flush(txn, lastSequence: last)
                return (count, end)
            }
            fold.didCommit()
            events += folded
            next = last + 1
            if reachedEnd { break }
        }
        return Result(startedAfter: startAfter, events: events, lastSequence: last, seconds: monotonicSeconds() - started)
    }
}
