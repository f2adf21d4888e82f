import EventStore
import Events
package import LMDB

/// Events and the views they fold into, committed together: the one place where events
/// enter a log.
///
/// Rule: inside `write { }`, each `append` gives an event the next sequence, adds it to
/// the open block (`LogAppender`) and folds it into the views (`ViewFold`), all in the
/// same LMDB transaction; the end of the transaction stores the open block, the views'
/// changed rows and their last sequence, then commits. A transaction LMDB runs again (the
/// map grew) or one that fails is undone whole: the block dropped, the fold's caches
/// forgotten, the next sequence back where it was. Motivation: "the views never run
/// ahead of the log nor lag behind it" is what every writer promises (a run, an import,
/// and whatever writes next); written once, it is kept once.
package final class EventWriter {
    package let log: EventLog
    package let views: Views
    package let fold: ViewFold
    private var appender: LogAppender
    /// The sequence the next event gets; nil until the first transaction reads it from the log.
    private var next: UInt64?

    package init(log: EventLog, views: Views) {
        self.log = log
        self.views = views
        self.fold = ViewFold(views: views)
        self.appender = LogAppender(log: log)
    }

    /// The sequence the next appended event gets (valid once a `write` has begun).
    package var nextSequence: UInt64 { next! }

    /// Runs `body` in one write transaction, then stores what it appended and commits.
    ///
    /// - Parameter onRollBack: puts the caller's own state back where the transaction
    ///   began; called before LMDB runs `body` again and when the transaction fails.
    package func write<R>(onRollBack: () -> Void = {}, _ body: (Transaction) throws -> R) throws -> R {
        let startedAt = next
        func rollBack() {
            appender.discard()
            fold.rollBack()
            next = startedAt
            onRollBack()
        }
        do {
            let result = try views.environment.write(onRetry: rollBack) { txn -> R in
                if next == nil { next = try log.lastSequence(txn) + 1 }
                let result = try body(txn)
                try appender.flush(txn)
                try fold.flush(txn, lastSequence: next! - 1)
                return result
            }
            fold.didCommit()
            return result
        } catch {
            // Nothing of the aborted transaction may leak into the next one.
            rollBack()
            throw error
        }
    }

    /// Appends `event` as the next record and folds it.
    @discardableResult
    package func append(_ txn: Transaction, run: UInt32, timeMs: Int64, _ event: Event) throws -> EventRecord {
        let record = EventRecord(sequence: next!, run: run, timeMs: timeMs, event: event)
        try appender.append(txn, record)
        try fold.apply(txn, record)
        next! += 1
        return record
    }

    /// The hot path: an `EntryCreated` whose name lives in a batch buffer, appended and
    /// folded without building an `Event`.
    @inline(__always)
    package func appendCreated(
        _ txn: Transaction, run: UInt32, timeMs: Int64, parent: UInt64, name: UnsafeRawBufferPointer,
        metadata: EntryMetadata
    ) throws {
        let sequence = next!
        try appender.appendEntryCreated(txn, sequence: sequence, run: run, timeMs: timeMs, parent: parent, name: name, metadata: metadata)
        try fold.applyCreated(txn, sequence: sequence, parent: parent, name: name, metadata: metadata)
        next = sequence + 1
    }

    /// Ends the open block: the next event starts another. A directory's first listing is
    /// one block, which the file-path view points at.
    package func endBlock(_ txn: Transaction) throws { try appender.flush(txn) }
}
