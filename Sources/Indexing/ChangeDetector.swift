import Events
internal import LMDB
import Projections
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

/// The walker's delegate: compares each listing with the file-path view and hands only
/// what changed to the writer, in batches.
///
/// A listing, in name order (the walker sorts it as it reads), is merged with the
/// directory's rows (which the view keeps in the same order), read from a snapshot of the
/// views that is refreshed as the writer commits. On a rescan, files that appear and
/// disappear are held until the walk ends, then paired by (device, inode): a pair is one
/// move. A directory that appears under a new name is looked up by inode at once, so a
/// moved directory is one move and its subtree is compared in place instead of being
/// indexed again (`MovePairing`).
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
    /// Listings merged since the view pages read through the map were last unmapped.
    private var listingsSinceRelease = 0
    /// Files held back until the walk ends, directories moved or replaced in this run.
    private var moves: MovePairing
    /// Directories found unchanged (and not racy) in their parent's listing: their names
    /// are taken from the view instead of being read again.
    private var trusted: Set<DirectoryKey> = []
    /// When an unchanged directory's names stand: the listers' look-ahead asks the same.
    let trust: DirectoryTrust
    /// Whether any listing is marked incomplete in the views (most often none is).
    private var checkIncomplete = true
    /// Whether any name is recorded as rejected (only with rules, now or before).
    private(set) var checkRejections = true
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
    /// The run has rules: a resumed run judges its recorded directories' names again (a
    /// `.git` or `.gitignore` among them shapes the rules below), instead of taking them as
    /// recorded.
    let hasRules: Bool

    init(
        views: Views, queue: BoundedQueue<WriterMessage>, stop: StopFlag, nextDirID: UInt64, isRescan: Bool, rootDirID: UInt64,
        rootIsNew: Bool, alreadyListed: Set<UInt64> = [], unfinishedBelow: Set<UInt64> = [],
        trust: DirectoryTrust = DirectoryTrust(previousRunStartMs: 0, trustDirectoryTimes: true),
        progress: RunProgress = RunProgress(), hasRules: Bool = false
    ) {
        self.views = views
        self.hasRules = hasRules
        self.progress = progress
        self.alreadyListed = alreadyListed
        self.unfinishedBelow = unfinishedBelow
        self.trust = trust
        self.moves = MovePairing(views: views)
        self.queue = queue
        self.stop = stop
        self.nextDirID = nextDirID
        self.isRescan = isRescan
        if rootIsNew { fresh.insert(DirectoryKey(rootDirID)) }
    }

    var shouldStop: Bool { stop.isSet }

    /// The snapshot of the views, refreshed every few dozen listings so it follows the
    /// writer's commits and does not pin old pages.
    private mutating func snapshot() throws -> Transaction {
        if let reader {
            listingsSinceRefresh += 1
            if reader.isSnapshotReleased {
                try reader.renew()
                listingsSinceRefresh = 0
                moves.snapshotChanged()
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
                moves.snapshotChanged()
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
                    stats.append(
                        EntryStat(
                            mode: m.mode, inode: m.inode, device: m.device, size: m.size,
                            mtimeNs: m.mtimeNs, ctimeNs: m.ctimeNs, btimeNs: m.btimeNs,
                            blocks: m.blocks, nlink: m.nlink, uid: m.uid, gid: m.gid))
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
        let deferredBefore = moves.heldBack
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
            assert(
                listing.entries.indices.dropFirst().allSatisfy { compare(name(listing.entries[$0 - 1]), name(listing.entries[$0])) < 0 },
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
                    if isRescan, let source = try moves.movedDirectory(txn, m, into: dirID, fresh: fresh) {
                        m.dirID = source.dirID
                        batch.moves.append(MoveSource(parent: source.parent, name: source.name))
                        batch.changes.append(
                            Change(
                                kind: .moved, nameStart: entry.nameStart, nameLength: entry.nameLength,
                                metadata: m, detail: Int32(batch.moves.count - 1)))
                    } else {
                        m.dirID = newDirectoryID()
                        batch.changes.append(Change(kind: .created, nameStart: entry.nameStart, nameLength: entry.nameLength, metadata: m))
                    }
                    listing.entries[index].directoryID = m.dirID
                } else if isRescan && m.kind != .directory {
                    moves.holdCreation(DeferredEntry(parent: dirID, name: Array(name(entry)), metadata: m))
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
                            if old.kind == .directory && old.dirID != 0 { moves.replaced(old.dirID) }
                            batch.changes.append(Change(kind: .removed, nameStart: r.nameStart, nameLength: r.nameLength, metadata: old))
                            changed = true
                            if batch.changes.count >= batchLimit { flush(&batch) }
                        } else if listingComplete && !unreadable.contains(gone) {
                            moves.holdRemoval(DeferredEntry(parent: dirID, name: gone, metadata: old))
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
                        m.dirID = DirectoryTrust.keepsID(old: old, now: m) ? old.dirID : newDirectoryID()
                        listing.entries[index].directoryID = m.dirID
                    }
                    // Whatever now holds an indexed directory's name (another directory, a
                    // file, a symlink, a FIFO, a hard link, or the same directory no longer
                    // entered), the update drops the old directory's rows: it and everything
                    // below it can only be created again elsewhere, never moved, in this run.
                    if old.kind == .directory && old.dirID != 0 && m.dirID != old.dirID { moves.replaced(old.dirID) }
                    guard old.differs(from: m) else {
                        // Unchanged, and changed last long enough before the previous run began
                        // that a write in the same clock tick cannot hide: its names stand.
                        if entry.canDescend && trust.namesStand(old: old, now: m) { trusted.insert(DirectoryKey(m.dirID)) }
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
                try compareRejections(
                    &listing, txn, isFresh: isFresh, complete: listingComplete, unreadable: unreadable,
                    batch: &batch, base: base)
            }
        }
        if changed && moves.heldBack > deferredBefore {
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
        if moves.creations.count >= MovePairing.creationLimit { send(moves.releaseCreations()) }
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
        progress.listed(
            entries: counts.entries - before.entries, bytes: counts.bytes &- before.bytes,
            subdirectories: counts.directories - before.directories, errors: UInt64(errors))
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
        send(moves.pair())
        for (dirID, children, errors) in deferredListings {
            var listed = WriterBatch(directoryID: dirID, names: [])
            listed.listedChildren = children
            listed.errors = errors
            send(listed)
        }
        deferredListings = []
    }

    /// Sends changes that live outside a listing, batched per parent directory.
    mutating func send(_ unsorted: [OutsideChange]) {
        WriterBatch.grouping(unsorted) { send($0) }
    }

    /// Hands a full batch over and starts the next one for the same directory.
    mutating func flush(_ batch: inout WriterBatch) {
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
