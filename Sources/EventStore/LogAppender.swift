import Events
package import LMDB

/// Gathers the writer's events into blocks (`BlockEncoder`) and stores a block when it is
/// full, when an event of another commit arrives, or on `flush`.
///
/// The writer flushes after each directory's batch: a directory's first listing is then
/// one block, which is what the file-path view points at (Docs/ARCHITECTURE.md).
public struct LogAppender: ~Copyable {
    public let log: EventLog
    var block = BlockEncoder()
    static let maxEvents: UInt32 = 4096
    static let maxBytes = 1 << 18

    public init(log: EventLog) { self.log = log }

    @inline(__always)
    private mutating func makeRoom(_ txn: Transaction, sequence: UInt64, run: UInt32, timeMs: Int64) throws {
        if !block.accepts(sequence: sequence, run: run, timeMs: timeMs) || block.count >= Self.maxEvents
            || block.byteCount >= Self.maxBytes
        {
            try flush(txn)
        }
    }

    /// The hot path: an `EntryCreated` whose name lives in a batch buffer.
    @inline(__always)
    package mutating func appendEntryCreated(
        _ txn: Transaction, sequence: UInt64, run: UInt32, timeMs: Int64,
        parent: UInt64, name: UnsafeRawBufferPointer, metadata: EntryMetadata
    ) throws {
        try makeRoom(txn, sequence: sequence, run: run, timeMs: timeMs)
        block.addEntryCreated(sequence: sequence, run: run, timeMs: timeMs, parent: parent, name: name, metadata: metadata)
    }

    package mutating func append(_ txn: Transaction, _ record: EventRecord) throws {
        try makeRoom(txn, sequence: record.sequence, run: record.run, timeMs: record.timeMs)
        block.add(record)
    }

    /// Stores the open block, if any.
    package mutating func flush(_ txn: Transaction) throws {
        let log = self.log
        try block.finish { first, value in try log.appendBlock(txn, firstSequence: first, value: value) }
    }

    /// Forgets the open block: its transaction aborted.
    public mutating func discard() { block.discard() }
}
