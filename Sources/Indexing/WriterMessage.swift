import Events
import Traversal

/// One change the writer turns into an event. Plain data (no reference inside), so that
/// the million of a first index are copied without reference counting.
///
/// The walk's side decides what changed; the writer turns each change into its event in
/// the order it comes, so the same changes give the same events.
struct Change: Sendable {
    enum Kind: UInt8, Sendable {
        case created, updated, removed, moved
        /// The rules rejected the name (`PathRejected`, with `rule`).
        case rejected
        /// A name recorded as rejected is no longer in its directory (`EntryRemoved`).
        case rejectionLifted
    }
    var kind: Kind
    /// The name, in the batch's `names`.
    var nameStart: Int32
    var nameLength: Int32
    var metadata: EntryMetadata
    /// For an update: the row it replaces.
    var old: EntryMetadata?
    /// For a move, where it was: an index into the batch's `moves`; for a rejection, the
    /// rule: an index into its `rules`.
    var detail: Int32 = -1
}

/// Where a moved entry was.
struct MoveSource: Sendable {
    var parent: UInt64
    var name: [UInt8]
}

/// A change outside any listing (held back until the walk ends, or a lifted rejection),
/// and for a move where it was.
typealias OutsideChange = (parent: UInt64, name: [UInt8], change: Change, from: MoveSource?)

/// What the walker side hands the writer: the changes of (part of) one directory.
struct WriterBatch: Sendable {
    var directoryID: UInt64
    var names: [UInt8]
    var changes: [Change] = []
    /// Where the moves among `changes` come from.
    var moves: [MoveSource] = []
    /// The rules that rejected the names among `changes`.
    var rules: [[UInt8]] = []
    var errors: [WalkError] = []
    /// Set on the last batch of a directory that changed: `DirectoryListed` follows.
    var listedChildren: UInt64?

    var eventCount: Int { changes.count + errors.count + (listedChildren == nil ? 0 : 1) }

    /// Changes that live outside a listing as batches, one per parent directory (split at
    /// `batchLimit`), names in order: the same changes give the same events.
    static func grouping(_ unsorted: [OutsideChange], _ body: (WriterBatch) -> Void) {
        let changes = unsorted.sorted { $0.parent != $1.parent ? $0.parent < $1.parent : $0.name.lexicographicallyPrecedes($1.name) }
        var batch = WriterBatch(directoryID: changes.first?.parent ?? 0, names: [])
        for item in changes {
            if item.parent != batch.directoryID || batch.changes.count >= batchLimit {
                body(batch)
                batch = WriterBatch(directoryID: item.parent, names: [])
            }
            var change = item.change
            if let from = item.from {
                batch.moves.append(from)
                change.detail = Int32(batch.moves.count - 1)
            }
            change.nameStart = Int32(batch.names.count)
            change.nameLength = Int32(item.name.count)
            batch.names.append(contentsOf: item.name)
            batch.names.append(0)
            batch.changes.append(change)
        }
        if !batch.changes.isEmpty { body(batch) }
    }
}

enum WriterMessage: Sendable {
    /// Changes of one or more directories, about `batchLimit` in all: small directories
    /// travel together so the queue hand-off (a futex wake) is paid per thousand entries.
    case batches([WriterBatch])
    /// The walk ended: what it saw, the error that stopped it if any, and whether a
    /// signal paused it.
    case finished(RunCounts, (any Error & Sendable)?, paused: Bool)
}

/// Maximum changes per batch handed to the writer (Spacedrive's saver/updater unit).
let batchLimit = 1000
