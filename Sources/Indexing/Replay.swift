import EventStore
import Events
internal import LMDB
import Projections

/// Rebuilds views from the log alone, into a second set of views in the same database,
/// and compares them with the live ones.
public enum Replay {
    /// The prefix of the views a replay builds (`replay.entries`, `replay.dirs`, …).
    public static let prefix = Views.replayPrefix

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
        let (events, last) = try fold.foldInChunks(from: startAfter + 1, through: through) { txn, from, to, body in
            try log.forEach(txn, from: from, through: to, body)
        }
        return Result(startedAfter: startAfter, events: events, lastSequence: last, seconds: monotonicSeconds() - started)
    }
}

/// Brings a database of an older schema to this build's: its log is kept as it is (old
/// records stay readable), its views are rebuilt from the log in the new layout.
public enum SchemaUpgrade {
    /// Whether the database needed it. Safe to repeat: the schema is raised last, so an
    /// upgrade cut off is done again at the next open.
    @discardableResult
    public static func upgradeIfNeeded(_ log: EventLog) throws -> Bool {
        guard log.storedSchema < EventLog.schemaVersion else { return false }
        let live = try Views(environment: log.environment)
        let replayed = try Views(environment: log.environment, prefix: Replay.prefix)
        try log.environment.write { txn in try replayed.clear(txn) }
        _ = try Replay.rebuild(log: log, into: live)
        try log.environment.write { txn in try log.setMetaValue(txn, "schema", EventLog.schemaVersion) }
        return true
    }
}

extension Replay {
    /// A replay compared with the live views.
    public struct Comparison: Sendable {
        public var result: Result
        public var liveDigest: ViewDigest
        public var replayedDigest: ViewDigest
        /// With `verify`: the first difference between the live and the replayed views.
        public var difference: String?
        /// With `verify`: the first broken invariant of the live views
        /// (`Views.firstInconsistency`), which a replay cannot see: it repeats whatever the
        /// log says.
        public var inconsistency: String?
    }

    /// Folds the log through `through` into the `replay.*` views and compares them with the
    /// live ones (`evindex replay`). The caller holds the run lock.
    ///
    /// - Parameter verify: also look for the first difference and the first broken invariant.
    public static func compare(log: EventLog, through: UInt64 = .max, fromSnapshot: Bool, verify: Bool) throws -> Comparison {
        let live = try Views(environment: log.environment, create: false)
        let replayed = try Views(environment: log.environment, prefix: prefix, create: true)
        let result = try rebuild(log: log, into: replayed, through: through, fromSnapshot: fromSnapshot)
        return try log.environment.read { txn in
            Comparison(
                result: result, liveDigest: try live.digest(txn), replayedDigest: try replayed.digest(txn),
                difference: verify ? try live.firstDifference(txn, from: replayed) : nil,
                inconsistency: verify ? try live.firstInconsistency(txn) : nil)
        }
    }

    /// What `evindex verify` found: every event decoded, the views against a replay from
    /// scratch, and the views' own invariants.
    public struct Verification: Sendable {
        /// Events decoded (every block's checksum and schema checked).
        public var events: UInt64
        public var runCount: Int
        /// Where the runs table first says what the log does not.
        public var runs: String?
        public var replayed: Result
        public var difference: String?
        public var inconsistency: String?
    }

    /// Checks a whole database against itself (`evindex verify`). The caller holds the run lock.
    /// - Throws: `DecodeError` naming the first bad record.
    public static func verify(log: EventLog) throws -> Verification {
        var checked: UInt64 = 0
        var ledger = RunLedger()
        var runCount = 0
        let runs: String? = try log.environment.read { txn in
            // Every event decoded, not only the checksums: a block is read as a whole.
            try log.forEach(txn) { sequence, run, timeMs, item in
                checked += 1
                ledger.add(sequence: sequence, run: run, timeMs: timeMs, item: item)
                return true
            }
            let rows = try log.allRuns(txn)
            runCount = rows.count
            return ledger.firstMismatch(rows)
        }
        let comparison = try compare(log: log, fromSnapshot: false, verify: true)
        return Verification(
            events: checked, runCount: runCount, runs: runs, replayed: comparison.result, difference: comparison.difference,
            inconsistency: comparison.inconsistency)
    }
}
