import EventStore
import Events
package import LMDB

/// A database opened for reading: its log and one set of views, asked questions through
/// snapshots.
///
/// Rule: every question is asked of an `IndexSnapshot` inside `read { }`, as GRDB's
/// `dbQueue.read { db in }`: the snapshot is one LMDB read transaction (two when the views
/// live apart from their log, as a diff's scratch views do), so all its answers are of
/// the same commit, whatever a run writes meanwhile, and nothing it hands out outlives
/// it. Motivation: the CLI, the web server and the catalog read the index without knowing
/// LMDB; storage stays free to change under this API.
public final class IndexReader: Sendable {
    public let log: EventLog
    public let views: Views
    /// The database directory, for messages.
    public var directory: String { log.directory }

    /// Opens the database in `directory` for reading.
    ///
    /// - Parameter replayed: the views `evindex replay` built (`replay.*`) instead of the live ones.
    /// - Throws: `StoreError` when there is no usable database; `ViewError.noReplayedViews`.
    public convenience init(directory: String, replayed: Bool = false) throws {
        let log = try EventLog(directory: directory, create: false, readOnly: true)
        do {
            try self.init(log: log, views: Views(environment: log.environment, prefix: replayed ? Views.replayPrefix : "", create: false))
        } catch LMDBError.notFound where replayed {
            throw ViewError.noReplayedViews(directory: directory)
        }
    }

    /// Reads `views` (in the log's environment, or apart from it) and `log`.
    public init(log: EventLog, views: Views) {
        self.log = log
        self.views = views
    }

    /// Runs `body` with a snapshot of the log and the views.
    public func read<R>(_ body: (IndexSnapshot) throws -> R) throws -> R {
        try IndexSnapshot.read([self]) { try body($0[0]) }
    }
}

/// The index as of one commit: the questions the commands ask of it. Valid only inside
/// the `read` that made it.
public struct IndexSnapshot {
    public let views: Views
    public let log: EventLog
    /// The transaction the views are read in.
    package let transaction: Transaction
    /// The transaction the log is read in: the same one unless the views live apart.
    package let logTransaction: Transaction

    package init(views: Views, log: EventLog, transaction: Transaction, logTransaction: Transaction) {
        self.views = views
        self.log = log
        self.transaction = transaction
        self.logTransaction = logTransaction
    }

    /// Runs `body` with a snapshot of each reader: one read transaction per environment,
    /// shared by the readers in the same one, so several readers of one database see one commit.
    public static func read<R>(_ readers: [IndexReader], _ body: ([IndexSnapshot]) throws -> R) throws -> R {
        var environments: [Environment] = []
        for reader in readers {
            for e in [reader.views.environment, reader.log.environment] where !environments.contains(where: { $0 === e }) {
                environments.append(e)
            }
        }
        func step(_ opened: [Transaction]) throws -> R {
            if opened.count == environments.count {
                func txn(_ e: Environment) -> Transaction { opened[environments.firstIndex { $0 === e }!] }
                return try body(
                    readers.map {
                        IndexSnapshot(views: $0.views, log: $0.log, transaction: txn($0.views.environment), logTransaction: txn($0.log.environment))
                    })
            }
            return try environments[opened.count].read { try step(opened + [$0]) }
        }
        return try step([])
    }

    // MARK: - Roots and places

    /// Every indexed root: absolute path bytes and dir id, in path order.
    public func roots() throws -> [(path: [UInt8], dirID: UInt64)] { try views.roots(transaction) }

    /// The longest indexed root that is `path` (absolute, normalized) or a directory above it.
    public func root(containing path: [UInt8]) throws -> (path: [UInt8], dirID: UInt64)? {
        try views.root(containing: path, transaction)
    }

    /// Where an absolute, normalized path is in the index.
    public func locate(_ path: [UInt8]) throws -> Views.Location? { try views.locate(transaction, path: path) }

    /// The absolute path of directory `dirID`, rebuilt from the parent chain.
    public func path(of dirID: UInt64) throws -> [UInt8]? { try views.path(transaction, of: dirID) }

    // MARK: - Entries and sizes

    /// The metadata of `name` in directory `parent`.
    public func entry(parent: UInt64, name: [UInt8]) throws -> EntryMetadata? { try views.entry(transaction, parent: parent, name: name) }

    /// Calls `body` with each child of directory `dirID`, in name order, until it returns
    /// false. Names are valid only inside `body`.
    public func forEachChild(of dirID: UInt64, _ body: (UnsafeRawBufferPointer, EntryMetadata) throws -> Bool) throws {
        try views.forEachChild(transaction, of: dirID, body)
    }

    /// The directory-size row of `dirID`: its parent, name and totals.
    public func directory(_ dirID: UInt64) throws -> DirectoryRecord? { try views.directory(transaction, dirID) }

    /// Calls `body` with every directory's id and row, in id order.
    public func forEachDirectory(_ body: (UInt64, DirectoryRecord) throws -> Void) throws {
        try views.forEachDirectoryRecord(transaction, body)
    }

    /// The rule that kept `name` in directory `parent` out of the index, if one did.
    public func rejection(parent: UInt64, name: [UInt8]) throws -> [UInt8]? { try views.rejection(transaction, parent: parent, name: name) }

    /// Whether the last listing of `dirID` met an error (its entries may be stale).
    public func isListingIncomplete(_ dirID: UInt64) throws -> Bool { try views.isListingIncomplete(transaction, dirID) }

    /// The directories whose last listing met an error, in id order (most often none).
    public func incompleteListings() throws -> [UInt64] { try views.incompleteListings(transaction) }

    /// Whether the views have a name index (the scratch views of a past point do not).
    public var hasNameIndex: Bool { views.names != nil }

    /// Calls `body` with each chunk of the name index (`NameIndex.swift`), in id order,
    /// until it returns false.
    public func forEachNameChunk(_ body: (NameChunk) throws -> Bool) throws { try views.forEachNameChunk(transaction, body) }

    /// The last sequence folded into the views.
    public func foldedThrough() throws -> UInt64 { try views.lastSequence(transaction) }

    /// The stop of a run at `sequence` (`JobPaused`, `JobCompleted`, `JobFailed`) as the
    /// directory-size history records it; nil when no run stopped there.
    /// A stop followed only by a `SnapshotTaken` (a pause writes one) stands for it too.
    public func sizeEpoch(at sequence: UInt64) throws -> SizeEpoch? {
        if let exact = try views.sizeEpoch(transaction, at: sequence) { return exact }
        guard let before = try views.sizeEpoch(transaction, atOrBefore: sequence) else { return nil }
        var onlySnapshots = true
        try log.forEach(logTransaction, from: before.start + 1, through: sequence, building: 0) { _, _, _, item in
            onlySnapshots = item.type == .snapshotTaken
            return onlySnapshots
        }
        return onlySnapshots ? before : nil
    }

    /// Every directory's row as it was at `epoch`'s stop, by id (no fold: the history and
    /// the rows now).
    public func directories(asOf epoch: SizeEpoch) throws -> [UInt64: DirectoryRecord] {
        try views.directories(transaction, asOf: epoch)
    }

    /// Directory `dirID`'s row as it was at `epoch`'s stop; nil when it did not exist then.
    public func directory(_ dirID: UInt64, asOf epoch: SizeEpoch) throws -> DirectoryRecord? {
        try views.directory(transaction, dirID, asOf: epoch)
    }

    // MARK: - Checks

    /// The digests of the views (their entries and directories).
    public func digest() throws -> ViewDigest { try views.digest(transaction) }

    /// The first difference between these views and `other`, read in the same snapshot.
    public func firstDifference(from other: IndexSnapshot) throws -> String? {
        try views.firstDifference(transaction, from: other.views)
    }

    /// The first broken invariant of the views (`Views.firstInconsistency`).
    public func firstInconsistency() throws -> String? { try views.firstInconsistency(transaction) }

    // MARK: - The log

    /// The last sequence of the log.
    public func lastSequence() throws -> UInt64 { try log.lastSequence(logTransaction) }

    /// Every run, in id order.
    public func runs() throws -> [RunRecord] { try log.allRuns(logTransaction) }

    /// Run `id`'s row.
    public func run(_ id: UInt32) throws -> RunRecord? { try log.run(logTransaction, id: id) }

    /// The options a run started with (its `JobStarted`).
    public func options(of run: RunRecord) throws -> String? { try log.jobOptions(logTransaction, run: run) }

    /// Calls `body` with each event's sequence and time (the events are read past, not
    /// built), in order, until it returns false.
    public func forEachEventTime(from: UInt64 = 1, through: UInt64 = .max, _ body: (UInt64, Int64) throws -> Bool) throws {
        try log.forEach(logTransaction, from: from, through: through, building: 0) { seq, _, time, _ in try body(seq, time) }
    }

    /// Calls `body` with each event from sequence `from` through `through`, in order, until
    /// it returns false. Every block read is checked (checksum, schema version).
    /// - Throws: `DecodeError` for a corrupt record.
    public func forEachRecord(from: UInt64 = 1, through: UInt64 = .max, _ body: (EventRecord) throws -> Bool) throws {
        try log.forEach(logTransaction, from: from, through: through) { try body(EventRecord(sequence: $0, run: $1, timeMs: $2, item: $3)) }
    }
}
