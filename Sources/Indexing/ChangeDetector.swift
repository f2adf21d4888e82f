import Events
import LMDB
import Projections
import Synchronization
import Traversal

/// One change the writer turns into an event.
struct Change: Sendable {
    enum Kind: UInt8, Sendable { case created, updated, removed }
    var kind: Kind
    /// The name, in the batch's `names`.
    var nameStart: Int32
    var nameLength: Int32
    var metadata: EntryMetadata
    /// For an update: the row it replaces.
    var old: EntryMetadata?
}

/// What the walker side hands the writer: the changes of (part of) one directory.
struct WriterBatch: Sendable {
    var directoryID: UInt64
    var names: [UInt8]
    var changes: [Change] = []
    var errors: [WalkError] = []
    /// Set on the last batch of a directory that changed: `DirectoryListed` follows.
    var listedChildren: UInt64?

    var eventCount: Int { changes.count + errors.count + (listedChildren == nil ? 0 : 1) }
}

enum WriterMessage: Sendable {
    /// Changes of one or more directories, about `batchLimit` in all: small directories
    /// travel together so the queue hand-off (a futex wake) is paid per thousand entries.
    case batches([WriterBatch])
    /// The walk ended: what it saw, and the error that stopped it, if any.
    case finished(RunCounts, (any Error & Sendable)?)
}

/// Maximum changes per batch handed to the writer (Spacedrive's saver/updater unit).
let batchLimit = 1000

/// The walker's delegate: compares each listing with the file-path view and hands only
/// what changed to the writer, in batches.
///
/// A directory first seen in this run has no rows to compare with; for the others the
/// rows are read once, in one read transaction per directory.
struct ChangeDetector: WalkDelegate {
    let views: Views
    let queue: BoundedQueue<WriterMessage>
    let stop: StopFlag
    var nextDirID: UInt64
    /// Directories first seen in this run: nothing in the view to compare with.
    var fresh: Set<UInt64> = []
    var counts = RunCounts()
    /// The rows of the directory being listed, by name.
    private var oldChildren: [[UInt8]: EntryMetadata] = [:]
    private var oldChildrenOf: UInt64 = 0
    /// Batches not yet handed over, and how many changes they hold.
    private var pending: [WriterBatch] = []
    private var pendingChanges = 0

    init(views: Views, queue: BoundedQueue<WriterMessage>, stop: StopFlag, nextDirID: UInt64, rootIsNew: Bool, rootDirID: UInt64) {
        self.views = views
        self.queue = queue
        self.stop = stop
        self.nextDirID = nextDirID
        if rootIsNew { fresh.insert(rootDirID) }
    }

    var shouldStop: Bool { stop.isSet }

    private mutating func loadOldChildren(of dirID: UInt64) throws {
        guard oldChildrenOf != dirID else { return }
        oldChildren.removeAll(keepingCapacity: true)
        oldChildrenOf = dirID
        guard !fresh.contains(dirID) else { return }
        try views.environment.read { txn in
            try views.forEachChild(txn, of: dirID) { name, m in
                oldChildren[Array(name)] = m
                return true
            }
        }
    }

    mutating func directoryID(parent: UInt64, name: UnsafeRawBufferPointer, stat: EntryStat) -> UInt64 {
        if !fresh.contains(parent) {
            // A read failure here only costs a new id: the directory is then indexed anew.
            try? loadOldChildren(of: parent)
            if let old = oldChildren[Array(name)], old.kind == .directory, old.dirID != 0 { return old.dirID }
        }
        let id = nextDirID
        nextDirID += 1
        fresh.insert(id)
        return id
    }

    mutating func directoryListed(_ listing: DirectoryListing) throws {
        let dirID = listing.directoryID
        try loadOldChildren(of: dirID)
        var batch = WriterBatch(directoryID: dirID, names: listing.names)
        batch.errors = listing.errors
        var changed = fresh.contains(dirID) || !listing.errors.isEmpty
        for entry in listing.entries {
            let m = EntryMetadata(entry.stat, dirID: entry.directoryID)
            counts.add(m.kind, size: m.size)
            let old: EntryMetadata? = oldChildren.isEmpty ? nil : listing.withName(entry) { oldChildren.removeValue(forKey: Array($0)) }
            if let old {
                guard old.differs(from: m) else { continue }
                batch.changes.append(Change(kind: .updated, nameStart: entry.nameStart, nameLength: entry.nameLength, metadata: m, old: old))
            } else {
                batch.changes.append(Change(kind: .created, nameStart: entry.nameStart, nameLength: entry.nameLength, metadata: m))
            }
            changed = true
            if batch.changes.count >= batchLimit { flush(&batch) }
        }
        // Names that could not be stat'ed still exist; a failed readdir leaves the rest unknown.
        let listingComplete = !listing.errors.contains { $0.operation == .readDirectory }
        for error in listing.errors where !error.name.isEmpty { oldChildren[error.name] = nil }
        if listingComplete {
            for (name, old) in oldChildren.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                let start = Int32(batch.names.count)
                batch.names.append(contentsOf: name)
                batch.names.append(0)
                batch.changes.append(Change(kind: .removed, nameStart: start, nameLength: Int32(name.count), metadata: old))
                changed = true
                if batch.changes.count >= batchLimit { flush(&batch) }
            }
        }
        oldChildren.removeAll(keepingCapacity: true)
        oldChildrenOf = 0
        if changed {
            batch.listedChildren = UInt64(listing.entries.count)
            send(batch)
        }
    }

    mutating func walkFailed(_ error: WalkError) throws {
        var batch = WriterBatch(directoryID: error.directoryID, names: [])
        batch.errors = [error]
        send(batch)
    }

    /// Hands a full batch over and starts the next one for the same directory.
    private mutating func flush(_ batch: inout WriterBatch) {
        send(batch)
        batch.changes.removeAll(keepingCapacity: false)
        batch.errors.removeAll()
    }

    private mutating func send(_ batch: WriterBatch) {
        pending.append(batch)
        pendingChanges += batch.eventCount
        if pendingChanges >= batchLimit { handOver() }
    }

    /// Pushes what is pending to the writer (also called once the walk ends).
    mutating func handOver() {
        guard !pending.isEmpty else { return }
        queue.push(.batches(pending))
        pending.removeAll(keepingCapacity: true)
        pendingChanges = 0
    }
}

/// A flag the writer raises to stop the walker (after a failure, or a signal).
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

extension EntryMetadata {
    /// Metadata from a stat; `dirID` is the id the walker gave a directory it enters.
    init(_ st: EntryStat, dirID: UInt64) {
        let kind: EntryKind
        switch st.mode & 0o170000 {
        case 0o100000: kind = .file
        case 0o040000: kind = .directory
        case 0o120000: kind = .symlink
        default: kind = .other
        }
        self.init(kind: kind, mode: st.mode, inode: st.inode, device: st.device, size: st.size,
                  mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, dirID: kind == .directory ? dirID : 0)
    }

    /// Whether a rescan must record a change: any of (inode, dev, mode, size, mtime, ctime)
    /// differs. The directory id is the view's own bookkeeping, not a fact about the file.
    func differs(from new: EntryMetadata) -> Bool {
        kind != new.kind || inode != new.inode || device != new.device || mode != new.mode
            || size != new.size || mtimeNs != new.mtimeNs || ctimeNs != new.ctimeNs || dirID != new.dirID
    }
}
