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
        let (events, last) = try fold.foldInChunks(from: startAfter + 1, through: through) { txn, from, to, body in
            try log.forEachItem(txn, from: from, through: to, body)
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
