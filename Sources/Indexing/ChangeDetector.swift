import Events
internal import LMDB
import Projections
import Synchronization
import Traversal
#if canImport(Glibc)
import Glibc
#endif

/// Where a moved entry was.
struct MoveSource: Sendable {
    var parent: UInt64
    var name: [UInt8]
}

/// One change the writer turns into an event. Plain data (no reference inside), so that
/// the million of a first index are copied without reference counting.
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
    var rules: [String] = []
    var errors: [WalkError] = []
    /// Set on the last batch of a directory that changed: `DirectoryListed` follows.
    var listedChildren: UInt64?

    var eventCount: Int { changes.count + errors.count + (listedChildren == nil ? 0 : 1) }
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

/// An entry held back until the end of a rescan, when creations and removals of the same
/// inode pair up as moves.
struct DeferredEntry {
    var parent: UInt64
    var name: [UInt8]
    var metadata: EntryMetadata
}

struct InodeKey: Hashable {
    var device: UInt64
    var inode: UInt64
}

/// The walker's delegate: compares each listing with the file-path view and hands only
/// what changed to the writer, in batches.
///
/// A listing, in name order (the walker sorts it as it reads), is merged with the
/// directory's rows (which the view keeps in the same order), read from a snapshot of the views that is refreshed as the writer
/// commits. On a rescan, files that appear and disappear are held until the walk ends,
/// then paired by (device, inode): a pair is one move. A directory that appears under a
/// new name is looked up by inode at once, so a moved directory is one move and its
/// subtree is compared in place instead of being indexed again.
struct ChangeDetector: WalkDelegate {
    let views: Views
    let queue: BoundedQueue<WriterMessage>
    let stop: StopFlag
    let progress: RunProgress
    var nextDirID: UInt64
    /// The root was indexed before: entries can vanish and move.
    let isRescan: Bool
    /// Directories first seen in this run: nothing in the view to compare with.
    var fresh: Set<DirectoryKey> = []
    var counts = RunCounts()
    /// Batches not yet handed over, and how many changes they hold.
    private var pending: [WriterBatch] = []
    private var pendingChanges = 0
    private var reader: Transaction?
    private var listingsSinceRefresh = 0
    /// The children of the directory a moved directory was last found leaving, valid for
    /// the current snapshot: many directories moving out of one parent cost one read of it.
    private var sourceChildren: (id: UInt64, children: Children)?
    /// Listings merged since the view pages read through the map were last unmapped.
    private var listingsSinceRelease = 0
    private var deferredCreations: [DeferredEntry] = []
    private var deferredRemovals: [DeferredEntry] = []
    /// Directories moved in this run: their old place is not a removal.
    private var movedDirectories: Set<UInt64> = []
    /// Directories found unchanged (and not racy) in their parent's listing: their names
    /// are taken from the view instead of being read again.
    private var trusted: Set<DirectoryKey> = []
    /// Directories whose ctime is at or after this (ns) may have changed within the clock
    /// tick of the previous run's listing: never trusted. 2 s before the previous run began.
    let racyThresholdNs: Int64
    /// Whether any listing is marked incomplete in the views (most often none is).
    private var checkIncomplete = true
    /// Whether any name is recorded as rejected (only with rules, now or before).
    private var checkRejections = true
    /// Directories this run recorded before it was stopped (a resumed run): their rows are
    /// taken as they are.
    private var alreadyListed: Set<UInt64>
    /// Directories with something below them the stopped run did not list: the others
    /// (among `alreadyListed`) are wholly recorded and are not entered again.
    private let unfinishedBelow: Set<UInt64>
    /// The dir ids of the recorded listings handed to the walker, by directory (the
    /// walker may ask for several before it hands the first back).
    private var recordedIDs: [UInt64: [UInt64]] = [:]
    /// Directories whose DirectoryListed (and errors) wait for their held-back changes.
    private var deferredListings: [(UInt64, UInt64, [WalkError])] = []
    /// A listing is being merged with the snapshot: hand-overs wait until it ends.
    private var inListing = false
    /// Directories whose rows an event of this run already dropped (their name now holds
    /// something else, or the rules now reject it): never a move source, nor is anything
    /// below them, since a move's source must still be in the views when it is folded.
    private var replacedDirectories: Set<UInt64> = []
    /// The run has rules: a resumed run judges its recorded directories' names again (a
    /// `.git` or `.gitignore` among them shapes the rules below), instead of taking them as
    /// recorded.
    let hasRules: Bool

    init(views: Views, queue: BoundedQueue<WriterMessage>, stop: StopFlag, nextDirID: UInt64, isRescan: Bool, rootDirID: UInt64,
         rootIsNew: Bool, alreadyListed: Set<UInt64> = [], unfinishedBelow: Set<UInt64> = [],
         previousRunStartMs: Int64 = 0, trustDirectoryTimes: Bool = true,
         progress: RunProgress = RunProgress(), hasRules: Bool = false) {
        self.views = views
        self.hasRules = hasRules
        self.progress = progress
        self.alreadyListed = alreadyListed
        self.unfinishedBelow = unfinishedBelow
        self.racyThresholdNs = Self.racyThreshold(previousRunStartMs: previousRunStartMs, trustDirectoryTimes: trustDirectoryTimes)
        self.queue = queue
        self.stop = stop
        self.nextDirID = nextDirID
        self.isRescan = isRescan
        if rootIsNew { fresh.insert(DirectoryKey(rootDirID)) }
    }

    var shouldStop: Bool { stop.isSet }

    /// 2 s before the previous run began; `.min` (nothing trusted) without one.
    static func racyThreshold(previousRunStartMs: Int64, trustDirectoryTimes: Bool) -> Int64 {
        trustDirectoryTimes && previousRunStartMs > 0 ? (previousRunStartMs - 2_000) * 1_000_000 : .min
    }

    /// The snapshot of the views, refreshed every few dozen listings so it follows the
    /// writer's commits and does not pin old pages.
    private mutating func snapshot() throws -> Transaction {
        if let reader {
            listingsSinceRefresh += 1
            if reader.isSnapshotReleased {
                try reader.renew()
                listingsSinceRefresh = 0
                sourceChildren = nil
            } else if listingsSinceRefresh >= 64 {
                listingsSinceRelease += listingsSinceRefresh
                if listingsSinceRelease >= 16_384 {
                    // A rescan reads the whole file-path view through the map: let go of
                    // those pages now and then (they stay in the page cache), or they
                    // count as this process's memory until it ends.
                    views.environment.releaseMappedPages()
                    listingsSinceRelease = 0
                }
                try reader.refresh()
                listingsSinceRefresh = 0
                sourceChildren = nil
            }
            return reader
        }
        let r = try views.environment.makeReader()
        reader = r
        checkIncomplete = try views.hasIncompleteListings(r)
        checkRejections = try views.hasRejections(r)
        return r
    }

    private mutating func newDirectoryID() -> UInt64 {
        let id = nextDirID
        nextDirID += 1
        fresh.insert(DirectoryKey(id))
        return id
    }

    mutating func knownListing(of directoryID: UInt64, stat: EntryStat) -> KnownListing? {
        let wasListed = !alreadyListed.isEmpty && alreadyListed.remove(directoryID) != nil
        guard wasListed || (!trusted.isEmpty && trusted.remove(DirectoryKey(directoryID)) != nil), let txn = try? snapshot() else { return nil }
        let resumed = wasListed && !hasRules
        var names: [UInt8] = []
        var stats: [EntryStat] = []
        var ids: [UInt64] = []
        do {
            if checkIncomplete, try views.isListingIncomplete(txn, directoryID) { return nil }
            try views.forEachChild(txn, of: directoryID) { name, m in
                names.append(contentsOf: name)
                names.append(0)
                if resumed {
                    stats.append(EntryStat(mode: m.mode, inode: m.inode, device: m.device, size: m.size,
                                           mtimeNs: m.mtimeNs, ctimeNs: m.ctimeNs, btimeNs: m.btimeNs))
                    ids.append(m.dirID)
                }
                return true
            }
            // Rejected names too: the rules judge every name again, as after a read.
            if !resumed && checkRejections {
                try views.forEachRejection(txn, of: directoryID) { name, _ in
                    names.append(contentsOf: name)
                    names.append(0)
                }
            }
        } catch {
            return nil
        }
        // Recorded by the stopped run (judged again by the rules when it has some): what
        // the walk hands back must be these names, not a read ahead.
        guard resumed else { return KnownListing(names: names, isRecorded: wasListed) }
        // Recorded by this run before it stopped: taken as is, nothing to compare.
        recordedIDs[directoryID] = ids
        return KnownListing(names: names, stats: stats)
    }

    mutating func directoryListed(_ listing: inout DirectoryListing) throws {
        let dirID = listing.directoryID
        // Progress is what this listing added to the counts: no second pass over entries.
        let before = counts
        defer { report(since: before, errors: listing.errors.count) }
        if let ids = recordedIDs.removeValue(forKey: dirID), ids.count == listing.entries.count {
            for i in listing.entries.indices {
                counts.add(EntryKind(mode: listing.entries[i].stat.mode), size: listing.entries[i].stat.size)
                guard listing.entries[i].canDescend else { continue }
                if alreadyListed.contains(ids[i]) && !unfinishedBelow.contains(ids[i]) {
                    // Wholly recorded: counted from the views, not walked again.
                    try countRecordedSubtree(ids[i])
                } else {
                    listing.entries[i].directoryID = ids[i]
                }
            }
            return
        }
        let txn = try snapshot()
        // The merge below reads the snapshot through a cursor: no hand-over (which releases
        // the snapshot) until it is done.
        inListing = true
        defer {
            inListing = false
            if pendingChanges >= batchLimit { handOver() }
        }
        let deferredBefore = deferredCreations.count + deferredRemovals.count
        // The listing's errors go with its last batch, after DirectoryListed: they leave
        // the directory marked incomplete.
        var batch = WriterBatch(directoryID: dirID, names: listing.names)
        let isFresh = fresh.contains(DirectoryKey(dirID))
        // A new directory's entries are all created: one allocation, not one per doubling.
        if isFresh { batch.changes.reserveCapacity(min(listing.entries.count, batchLimit)) }
        // A directory whose last listing was incomplete is listed again in full: say so.
        var changed = !listing.errors.isEmpty || isFresh
        if !changed && checkIncomplete { changed = try views.isListingIncomplete(txn, dirID) }
        for entry in listing.entries { counts.add(EntryKind(mode: entry.stat.mode), size: entry.stat.size) }

        // The walker gives the entries in name order, the view's.
        let names = listing.names
        try names.withUnsafeBytes { namesBuffer in
            let base = namesBuffer.baseAddress!
            @inline(__always) func name(_ e: ListedEntry) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength))
            }
            @inline(__always) func compare(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Int32 {
                let c = memcmp(x.baseAddress!, y.baseAddress!, min(x.count, y.count))
                return c != 0 ? c : Int32(x.count) - Int32(y.count)
            }
            assert(listing.entries.indices.dropFirst().allSatisfy { compare(name(listing.entries[$0 - 1]), name(listing.entries[$0])) < 0 },
                   "a listing out of name order")

            let unreadable = Set(listing.errors.lazy.filter { !$0.name.isEmpty }.map(\.name))
            let listingComplete = !listing.errors.contains { $0.operation == .readDirectory }
            // Indexed names the rules now reject leave the index at once (before their
            // PathRejected), never paired into moves.
            var nowRejected: [[UInt8]: RejectedEntry] = [:]
            for r in listing.rejected { nowRejected[Array(UnsafeRawBufferPointer(start: base + Int(r.nameStart), count: Int(r.nameLength)))] = r }

            var next = 0
            // An entry not in the view: created, or a directory that moved here.
            func appeared(_ index: Int) throws {
                let entry = listing.entries[index]
                var m = EntryMetadata(entry.stat, dirID: 0)
                if entry.canDescend {
                    if isRescan, let source = try movedDirectory(txn, m, into: dirID) {
                        m.dirID = source.dirID
                        movedDirectories.insert(source.dirID)
                        batch.moves.append(MoveSource(parent: source.parent, name: source.name))
                        batch.changes.append(Change(kind: .moved, nameStart: entry.nameStart, nameLength: entry.nameLength,
                                                    metadata: m, detail: Int32(batch.moves.count - 1)))
                    } else {
                        m.dirID = newDirectoryID()
                        batch.changes.append(Change(kind: .created, nameStart: entry.nameStart, nameLength: entry.nameLength, metadata: m))
                    }
                    listing.entries[index].directoryID = m.dirID
                } else if isRescan && m.kind != .directory {
                    deferredCreations.append(DeferredEntry(parent: dirID, name: Array(name(entry)), metadata: m))
                    return
                } else {
                    batch.changes.append(Change(kind: .created, nameStart: entry.nameStart, nameLength: entry.nameLength, metadata: m))
                }
                changed = true
                if batch.changes.count >= batchLimit { flush(&batch) }
            }

            if !isFresh {
                // Merge the sorted listing with the rows, which the cursor gives in the same order.
                try views.forEachChild(txn, of: dirID) { oldName, old in
                    while next < listing.entries.count && compare(name(listing.entries[next]), oldName) < 0 {
                        try appeared(next)
                        next += 1
                    }
                    guard next < listing.entries.count && compare(name(listing.entries[next]), oldName) == 0 else {
                        // A row whose name is no longer listed is gone, if the listing is whole.
                        let gone = Array(oldName)
                        if let r = nowRejected[gone] {
                            // Its rows leave now, before any move out of it could be written.
                            if old.kind == .directory && old.dirID != 0 { replacedDirectories.insert(old.dirID) }
                            batch.changes.append(Change(kind: .removed, nameStart: r.nameStart, nameLength: r.nameLength, metadata: old))
                            changed = true
                            if batch.changes.count >= batchLimit { flush(&batch) }
                        } else if listingComplete && !unreadable.contains(gone) {
                            deferredRemovals.append(DeferredEntry(parent: dirID, name: gone, metadata: old))
                        }
                        return true
                    }
                    let index = next
                    next += 1
                    let entry = listing.entries[index]
                    var m = EntryMetadata(entry.stat, dirID: 0)
                    if entry.canDescend {
                        // The same directory keeps its id; another one under the same name
                        // (`mv d e; mkdir d`) is new.
                        m.dirID = old.kind == .directory && old.dirID != 0 && old.isSameDirectory(as: m) ? old.dirID : newDirectoryID()
                        listing.entries[index].directoryID = m.dirID
                    }
                    // Whatever now holds an indexed directory's name (another directory, a
                    // file, a symlink, a FIFO, a hard link, or the same directory no longer
                    // entered), the update drops the old directory's rows: it and everything
                    // below it can only be created again elsewhere, never moved, in this run.
                    if old.kind == .directory && old.dirID != 0 && m.dirID != old.dirID { replacedDirectories.insert(old.dirID) }
                    guard old.differs(from: m) else {
                        // Unchanged, and changed last long enough before the previous run began
                        // that a write in the same clock tick cannot hide: its names stand.
                        if m.kind == .directory && entry.canDescend && m.ctimeNs < racyThresholdNs { trusted.insert(DirectoryKey(m.dirID)) }
                        return true
                    }
                    batch.changes.append(Change(kind: .updated, nameStart: entry.nameStart, nameLength: entry.nameLength, metadata: m, old: old))
                    changed = true
                    if batch.changes.count >= batchLimit { flush(&batch) }
                    return true
                }
            }
            while next < listing.entries.count {
                try appeared(next)
                next += 1
            }
            if !listing.rejected.isEmpty || (!isFresh && checkRejections) {
                try compareRejections(&listing, txn, isFresh: isFresh, complete: listingComplete, unreadable: unreadable,
                                      batch: &batch, base: base)
            }
        }
        if changed && deferredCreations.count + deferredRemovals.count > deferredBefore {
            // Recorded as listed only once its held-back changes are written (at the end of
            // the walk): a run resumed after a crash lists it again and finds them again.
            deferredListings.append((dirID, UInt64(listing.entries.count), listing.errors))
            if !batch.changes.isEmpty { send(batch) }
        } else if changed {
            batch.listedChildren = UInt64(listing.entries.count)
            batch.errors = listing.errors
            send(batch)
        } else if !batch.changes.isEmpty {
            send(batch)
        }
        if deferredCreations.count >= Self.deferredCreationLimit { releaseDeferredCreations() }
    }

    /// Records new or changed rejections, and rejected names that left the directory.
    private mutating func compareRejections(_ listing: inout DirectoryListing, _ txn: Transaction, isFresh: Bool, complete: Bool,
                                            unreadable: Set<[UInt8]>, batch: inout WriterBatch, base: UnsafeRawPointer) throws {
        var known: [[UInt8]: [UInt8]] = [:]
        if !isFresh && checkRejections {
            try views.forEachRejection(txn, of: listing.directoryID) { name, rule in known[Array(name)] = Array(rule) }
        }
        for r in listing.rejected {
            let name = Array(UnsafeRawBufferPointer(start: base + Int(r.nameStart), count: Int(r.nameLength)))
            if let old = known.removeValue(forKey: name), old.elementsEqual(r.rule.utf8) { continue }
            batch.rules.append(r.rule)
            batch.changes.append(Change(kind: .rejected, nameStart: r.nameStart, nameLength: r.nameLength,
                                        metadata: EntryMetadata(kind: .other, mode: 0, inode: 0, device: 0, size: 0, mtimeNs: 0, ctimeNs: 0),
                                        detail: Int32(batch.rules.count - 1)))
            if batch.changes.count >= batchLimit { flush(&batch) }
        }
        guard !known.isEmpty, complete else { return }
        // Names now indexed drop their rejection as they are created; the rest are gone.
        for e in listing.entries {
            known.removeValue(forKey: Array(UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength))))
        }
        let lifted = known.keys.filter { !unreadable.contains($0) }.map {
            (parent: listing.directoryID, name: $0,
             change: Change(kind: .rejectionLifted, nameStart: 0, nameLength: 0,
                            metadata: EntryMetadata(kind: .other, mode: 0, inode: 0, device: 0, size: 0, mtimeNs: 0, ctimeNs: 0)),
             from: MoveSource?.none)
        }
        if !lifted.isEmpty { send(lifted) }
    }

    /// Held-back creations beyond this are written at once (memory stays bounded on a
    /// rescan that finds a huge new subtree); those can no longer pair up as moves.
    static let deferredCreationLimit = 100_000

    private mutating func releaseDeferredCreations() {
        let changes = deferredCreations.map {
            (parent: $0.parent, name: $0.name, change: Change(kind: .created, nameStart: 0, nameLength: 0, metadata: $0.metadata),
             from: MoveSource?.none)
        }
        deferredCreations = []
        send(changes)
    }

    /// Counts, from the views, everything below a directory the stopped run wholly recorded.
    private mutating func countRecordedSubtree(_ dirID: UInt64) throws {
        let txn = try snapshot()
        var pending = [dirID]
        var directories: UInt64 = 0
        while let id = pending.popLast() {
            try views.forEachChild(txn, of: id) { _, m in
                counts.add(m.kind, size: m.size)
                if m.kind == .directory && m.dirID != 0 {
                    pending.append(m.dirID)
                    directories += 1
                }
                return true
            }
        }
        // Its entries reach the progress through the counts; its directories count as listed.
        progress.listedWithoutReading(directories)
    }

    private func report(since before: RunCounts, errors: Int) {
        progress.listed(entries: counts.entries - before.entries, bytes: counts.bytes &- before.bytes,
                        subdirectories: counts.directories - before.directories, errors: UInt64(errors))
    }

    /// The indexed directory that a directory newly seen at `into` is, by inode, if it
    /// moved there: it must still be indexed at its old place, not be `into` or one of its
    /// ancestors, and not have moved already in this run.
    private mutating func entryAtOldPlace(_ txn: Transaction, parent: UInt64, name: [UInt8]) throws -> EntryMetadata? {
        if sourceChildren?.id != parent { sourceChildren = (parent, try views.children(txn, of: parent)) }
        return name.withUnsafeBytes { sourceChildren!.children.find($0) }
    }

    private mutating func movedDirectory(_ txn: Transaction, _ m: EntryMetadata, into dirID: UInt64)
        throws -> (dirID: UInt64, parent: UInt64, name: [UInt8])? {
        guard let id = try views.directoryID(txn, device: m.device, inode: m.inode),
              !movedDirectories.contains(id), !fresh.contains(DirectoryKey(id)), !replacedDirectories.contains(id),
              let row = try views.directory(txn, id), row.parent != 0,
              let atOldPlace = try entryAtOldPlace(txn, parent: row.parent, name: row.name),
              atOldPlace.dirID == id, atOldPlace.isSameFile(as: m) || atOldPlace.btimeNs == 0 else { return nil }
        var ancestor = dirID
        while ancestor != 0 {
            if ancestor == id { return nil }
            ancestor = try views.directory(txn, ancestor)?.parent ?? 0
        }
        // Under a directory replaced in this run, the old rows are on their way out.
        var above = row.parent
        while above != 0 {
            if replacedDirectories.contains(above) { return nil }
            above = try views.directory(txn, above)?.parent ?? 0
        }
        return (id, row.parent, row.name)
    }

    mutating func walkFailed(_ error: WalkError) throws {
        var batch = WriterBatch(directoryID: error.directoryID, names: [])
        batch.errors = [error]
        send(batch)
    }

    /// The walk is over: pairs held-back creations and removals by inode into moves,
    /// hands everything over, and ends the snapshot.
    mutating func finishWalk(completed: Bool) {
        reader = nil
        guard completed else { return }
        var removedByInode: [InodeKey: [Int]] = [:]
        for (i, r) in deferredRemovals.enumerated() where r.metadata.kind != .directory {
            removedByInode[InodeKey(device: r.metadata.device, inode: r.metadata.inode), default: []].append(i)
        }
        var taken = Set<Int>()
        var changes: [OutsideChange] = []
        for c in deferredCreations {
            let key = InodeKey(device: c.metadata.device, inode: c.metadata.inode)
            if let i = removedByInode[key]?.first(where: { !taken.contains($0) && deferredRemovals[$0].metadata.isSameFile(as: c.metadata) }) {
                taken.insert(i)
                let r = deferredRemovals[i]
                changes.append((c.parent, c.name, Change(kind: .moved, nameStart: 0, nameLength: 0, metadata: c.metadata),
                                MoveSource(parent: r.parent, name: r.name)))
            } else {
                changes.append((c.parent, c.name, Change(kind: .created, nameStart: 0, nameLength: 0, metadata: c.metadata), nil))
            }
        }
        for (i, r) in deferredRemovals.enumerated() where !taken.contains(i) {
            if r.metadata.kind == .directory && movedDirectories.contains(r.metadata.dirID) { continue }
            changes.append((r.parent, r.name, Change(kind: .removed, nameStart: 0, nameLength: 0, metadata: r.metadata), nil))
        }
        deferredCreations = []
        deferredRemovals = []
        send(changes)
        for (dirID, children, errors) in deferredListings {
            var listed = WriterBatch(directoryID: dirID, names: [])
            listed.listedChildren = children
            listed.errors = errors
            send(listed)
        }
        deferredListings = []
    }

    /// Sends changes that live outside a listing, one batch per parent directory, names in
    /// order: the same changes give the same events.
    private mutating func send(_ unsorted: [OutsideChange]) {
        let changes = unsorted.sorted { $0.parent != $1.parent ? $0.parent < $1.parent : $0.name.lexicographicallyPrecedes($1.name) }
        var batch = WriterBatch(directoryID: changes.first?.parent ?? 0, names: [])
        for item in changes {
            if item.parent != batch.directoryID || batch.changes.count >= batchLimit {
                send(batch)
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
        if !batch.changes.isEmpty { send(batch) }
    }

    /// Hands a full batch over and starts the next one for the same directory.
    private mutating func flush(_ batch: inout WriterBatch) {
        send(batch)
        batch.changes.removeAll(keepingCapacity: false)
        batch.moves.removeAll()
        batch.rules.removeAll()
        batch.errors.removeAll()
    }

    private mutating func send(_ batch: WriterBatch) {
        pending.append(batch)
        pendingChanges += batch.eventCount
        if pendingChanges >= batchLimit && !inListing { handOver() }
    }

    /// Pushes what is pending to the writer (also called once the walk ends).
    mutating func handOver() {
        guard !pending.isEmpty else { return }
        // The push may block until the writer catches up, and the writer may need to grow
        // the map meanwhile, which it cannot while this thread holds a snapshot.
        reader?.reset()
        queue.push(.batches(pending))
        pending.removeAll(keepingCapacity: true)
        pendingChanges = 0
    }
}

/// A flag that stops the walker: raised by the writer after a failure, or by a signal.
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public var isSet: Bool { flag.load(ordering: .relaxed) || pauseRequested.load(ordering: .relaxed) }
    /// Stops the walk at the next directory.
    public func set() { flag.store(true, ordering: .relaxed) }
}

/// Raised by SIGINT or SIGTERM: the run pauses at its next checkpoint.
let pauseRequested = Atomic<Bool>(false)

extension EntryKind {
    /// The kind of an `st_mode`.
    init(mode: UInt32) {
        switch mode & 0o170000 {
        case 0o100000: self = .file
        case 0o040000: self = .directory
        case 0o120000: self = .symlink
        default: self = .other
        }
    }
}

extension EntryMetadata {
    /// Metadata from a stat; `dirID` is the id the walker gave a directory it enters.
    init(_ st: EntryStat, dirID: UInt64) {
        let kind = EntryKind(mode: st.mode)
        self.init(kind: kind, mode: st.mode, inode: st.inode, device: st.device, size: st.size,
                  mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, btimeNs: st.btimeNs, dirID: kind == .directory ? dirID : 0)
    }

    /// Whether `other` is this same directory: inode and device, and birth time when both
    /// are known (a directory's size and mtime change with its contents).
    func isSameDirectory(as other: EntryMetadata) -> Bool {
        inode == other.inode && device == other.device && (btimeNs == 0 || other.btimeNs == 0 || btimeNs == other.btimeNs)
    }

    /// Whether `other`, seen under another name, is this same file: same inode and kind,
    /// and the same birth time (or, where the filesystem keeps none, the same size and
    /// mtime). A freed inode given to a new file fails this; a rename passes.
    func isSameFile(as other: EntryMetadata) -> Bool {
        guard kind == other.kind && inode == other.inode && device == other.device else { return false }
        if btimeNs != 0 && other.btimeNs != 0 { return btimeNs == other.btimeNs }
        return size == other.size && mtimeNs == other.mtimeNs
    }

    /// Whether a rescan must record a change: any of (inode, dev, mode, size, mtime, ctime,
    /// birth time) differs, or the directory id (a directory replaced by a new one).
    func differs(from new: EntryMetadata) -> Bool {
        kind != new.kind || inode != new.inode || device != new.device || mode != new.mode
            || size != new.size || mtimeNs != new.mtimeNs || ctimeNs != new.ctimeNs || btimeNs != new.btimeNs
            || dirID != new.dirID
    }
}

/// A lister thread's look-ahead into the views: the names of a directory the walk has not
/// reached, when the `ChangeDetector` will trust them (unchanged since its last listing,
/// not racy, not incomplete), so the lister need not read them. Its own read transaction
/// holds a snapshot only during a look-up, so it neither pins old pages nor holds up a map
/// resize while the lister reads.
struct ViewLookAhead: IndexLookAhead {
    let views: Views
    let racyThresholdNs: Int64
    let checkIncomplete: Bool
    let checkRejections: Bool
    private let reader: Transaction
    /// The children of the directory looked up last: its subdirectories come one after
    /// another, and a look-up by name in a stored listing reads the whole of it.
    private var parentChildren: (id: UInt64, children: Children)?

    init?(views: Views, racyThresholdNs: Int64) {
        guard racyThresholdNs > .min, let reader = try? views.environment.makeReader(),
              let incomplete = try? views.hasIncompleteListings(reader), let rejections = try? views.hasRejections(reader)
        else { return nil }
        reader.reset()
        self.views = views
        self.racyThresholdNs = racyThresholdNs
        self.checkIncomplete = incomplete
        self.checkRejections = rejections
        self.reader = reader
    }

    mutating func lookUp(parent: UInt64, name: UnsafeRawBufferPointer, stat: EntryStat) -> (id: UInt64, known: KnownListing?) {
        guard (try? reader.renew()) != nil else { return (0, nil) }
        defer { reader.reset() }
        do {
            // What ChangeDetector.directoryListed decides for the same row.
            if parentChildren?.id != parent { parentChildren = (parent, try views.children(reader, of: parent)) }
            guard let old = parentChildren!.children.find(name), old.kind == .directory, old.dirID != 0 else { return (0, nil) }
            let now = EntryMetadata(stat, dirID: old.dirID)
            guard old.isSameDirectory(as: now) else { return (0, nil) }
            guard !old.differs(from: now), now.ctimeNs < racyThresholdNs else { return (old.dirID, nil) }
            if checkIncomplete, try views.isListingIncomplete(reader, old.dirID) { return (old.dirID, nil) }
            var names: [UInt8] = []
            try views.forEachChild(reader, of: old.dirID) { n, _ in
                names.append(contentsOf: n)
                names.append(0)
                return true
            }
            if checkRejections {
                try views.forEachRejection(reader, of: old.dirID) { n, _ in
                    names.append(contentsOf: n)
                    names.append(0)
                }
            }
            return (old.dirID, KnownListing(names: names))
        } catch {
            return (0, nil)
        }
    }
}
