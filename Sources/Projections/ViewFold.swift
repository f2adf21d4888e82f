import EventStore
import Events
package import LMDB

/// Folds events into the file-path and directory-size views inside the writer's
/// transaction. The same events give the same views, folded live or replayed.
///
/// Size deltas are gathered per parent directory and carried up the ancestor chain once
/// per flush (not once per file); directory rows are cached across commits and written
/// back, in key order, when the transaction is flushed.
/// - Important: One fold per writer. After a transaction aborts, call `rollBack()`.
public final class ViewFold {
    public let views: Views
    /// Rows as committed.
    private var committed: [DirectoryKey: DirectoryRecord] = [:]
    /// Rows changed in the open transaction; `nil` marks a deleted row.
    var dirty: [DirectoryKey: DirectoryRecord?] = [:]
    /// No directory row has a higher id (the `dirs` view's last key, raised as this fold
    /// writes rows): a new directory's id is past it, and its row is not looked for.
    /// Nil until first needed, and after a rollback.
    private var highestStoredDirectory: UInt64?
    /// Totals not yet carried up from each directory.
    private var pendingDeltas: [DirectoryKey: DirectoryTotals] = [:]
    /// The delta of the directory whose entries are being folded, not yet in
    /// `pendingDeltas` (a directory's entries come together: one dictionary update each).
    private var runningDelta = DirectoryTotals()
    private var runningDeltaParent: UInt64?
    /// Directories created in the current run: a run lists each directory once, so their
    /// children are new names, with no rejection to drop.
    private var fresh: Set<DirectoryKey> = []
    private var freshInTransaction: [UInt64] = []
    private var valueBuffer = ByteWriter(capacity: 256)
    /// The chunk of the name index being rewritten, and a listing's folded names.
    private var nameChunk = NameChunkBuilder()
    private var foldedNames: [UInt8] = []
    /// The listings (file-path view) the open transaction reads or changes, written back
    /// at `flush`.
    private var listings: [DirectoryKey: PendingListing] = [:]
    /// Directories created in this run whose listing was never stored: nothing to read.
    private var unwritten: Set<DirectoryKey> = []
    /// The listing looked up last, unretained: `listings` keeps it alive until
    /// `recycleListings` forgets both. 0: none (no directory has id 0).
    private var lastListingID: UInt64 = 0
    private var lastListing: Unmanaged<PendingListing>?
    /// Listings of earlier transactions, emptied, for reuse.
    private var spareListings: [PendingListing] = []
    /// Whether the rejections view may hold rows: only then does an entry's arrival look
    /// for a rejection to drop. Nil until first asked; true is always safe.
    private var mayHaveRejections: Bool?
    /// Whether the `incomplete` view may hold rows: only then does a `DirectoryListed`
    /// delete one. Nil until first asked; true is always safe.
    private var mayHaveIncomplete: Bool?
    /// Whether the `links` view may hold rows: only then are the shared inodes below a
    /// directory that moves or goes looked for. Nil until first asked; true is always safe.
    var mayHaveLinks: Bool?

    /// The directory-size history (`SizeHistory.swift`): the epoch the fold is in (nil
    /// before the log's first stop, and until read from the view), the rows it has
    /// imaged in it, and what the open transaction has yet to write.
    var epoch: SizeEpoch?
    var epochKnown = false
    var imaged: Set<DirectoryKey> = []
    var pendingImages: [(id: UInt64, epoch: UInt64, row: DirectoryRecord)] = []
    var pendingEpochs: [SizeEpoch] = []

    /// Whether the fold keeps `dirInodes`, which only a rescan reads (to recognize a moved
    /// directory): views folded to be read and thrown away (a diff's) do without.
    let keepsDirectoryInodes: Bool
    /// Whether the fold keeps the directory-size history, which only `du --since` reads.
    let keepsHistory: Bool

    public init(views: Views, keepsDirectoryInodes: Bool = true, keepsHistory: Bool = true) {
        self.views = views
        self.keepsDirectoryInodes = keepsDirectoryInodes
        self.keepsHistory = keepsHistory
    }

    private func rejectionsPossible(_ txn: Transaction) throws -> Bool {
        if let known = mayHaveRejections { return known }
        let has = try views.hasRejections(txn)
        mayHaveRejections = has
        return has
    }

    /// A name that is now indexed, or gone, is no longer a rejected name.
    private func dropRejection(_ txn: Transaction, key: UnsafeRawBufferPointer) throws {
        guard let rejected = views.rejected, try rejectionsPossible(txn) else { return }
        _ = try txn.delete(rejected, key: key)
    }

    // MARK: - Transaction boundaries

    /// Carries pending deltas up, writes changed directory rows and the last sequence.
    package func flush(_ txn: Transaction, lastSequence: UInt64) throws {
        try carryDeltas(txn)
        let changed = listings.filter { $0.value.changed }.sorted { $0.key.id < $1.key.id }
        // Rows past a view's last key (a new directory's) are appended: no search down the tree.
        var lastListingKey = changed.isEmpty ? 0 : try lastKey(txn, views.entries)
        for (key, listing) in changed {
            let id = key.id
            try Views.withIDKey(id) { key in
                if listing.encoded(into: &valueBuffer) {
                    try txn.put(views.entries, key: key, value: valueBuffer.bytes, flags: id > lastListingKey ? .append : [])
                    lastListingKey = max(lastListingKey, id)
                } else {
                    _ = try txn.delete(views.entries, key: key)
                }
            }
            unwritten.remove(key)
        }
        try writeNames(txn, changed)
        recycleListings()
        for id in dirty.keys.lazy.map(\.id).sorted() {
            try Views.withIDKey(id) { key in
                if let record = dirty[DirectoryKey(id)]! {
                    record.encoded(into: &valueBuffer)
                    let highest = try highestStored(txn)
                    try txn.put(views.dirs, key: key, value: valueBuffer.bytes, flags: id > highest ? .append : [])
                    if id > highest { highestStoredDirectory = id }
                } else {
                    try txn.delete(views.dirs, key: key)
                }
            }
        }
        try writeHistory(txn)
        try views.setLastSequence(txn, lastSequence)
    }

    /// Rewrites the chunks of the name index that cover the changed listings (in id order).
    private func writeNames(_ txn: Transaction, _ changed: [(key: DirectoryKey, value: PendingListing)]) throws {
        guard let names = views.names, !changed.isEmpty else { return }
        var lastChunk = try lastKey(txn, names)
        var i = 0
        while i < changed.count {
            let chunk = Views.nameChunkID(changed[i].key.id)
            nameChunk.reset()
            if chunk <= lastChunk {
                try Views.withIDKey(chunk) { key in
                    _ = try txn.get(names, key: key) { try nameChunk.load(try NameChunk(firstID: chunk, value: $0)) }
                }
            }
            while i < changed.count, Views.nameChunkID(changed[i].key.id) == chunk {
                foldedNames.removeAll(keepingCapacity: true)
                changed[i].value.forEach { name, _ in NameChunkBuilder.appendFolded(name, to: &foldedNames) }
                nameChunk.set(changed[i].key.id, foldedNames)
                i += 1
            }
            try Views.withIDKey(chunk) { key in
                if nameChunk.encoded(into: &valueBuffer) {
                    try txn.put(names, key: key, value: valueBuffer.bytes, flags: chunk > lastChunk ? .append : [])
                    lastChunk = max(lastChunk, chunk)
                } else {
                    _ = try txn.delete(names, key: key)
                }
            }
        }
    }

    /// The transaction committed: its rows become the committed cache.
    public func didCommit() {
        if committed.count > 500_000 { committed.removeAll(keepingCapacity: true) }
        for (id, record) in dirty { committed[id] = record }
        dirty.removeAll(keepingCapacity: true)
        freshInTransaction.removeAll(keepingCapacity: true)
        pendingImages.removeAll(keepingCapacity: true)
        pendingEpochs.removeAll()
    }

    /// The transaction aborted: forget everything it changed.
    public func rollBack() {
        forgetHistory()
        recycleListings()
        highestStoredDirectory = nil
        dirty.removeAll(keepingCapacity: true)
        pendingDeltas.removeAll(keepingCapacity: true)
        runningDeltaParent = nil
        // What the transaction wrote is gone: a listing it stored may be unwritten again,
        // one it dropped may be back. Forgetting costs look-ups, never correctness.
        unwritten.removeAll(keepingCapacity: true)
        for id in freshInTransaction { fresh.remove(DirectoryKey(id)) }
        freshInTransaction.removeAll(keepingCapacity: true)
    }

    // MARK: - Folding a stretch of the log

    /// Folds records `first...through` into the views, one write transaction per `chunk`
    /// events (so the dirty pages of a transaction stay bounded), committing each.
    ///
    /// - Parameters:
    ///   - forEachItem: calls its body with each event from a sequence through another,
    ///     built (`EventLog.forEach` with every type in its mask), in order, until the body returns false; it gets
    ///     the write transaction (for a log in the same environment) and may read elsewhere.
    ///   - afterCommit: called after each chunk's commit.
    /// - Returns: how many records were folded, and the last one's sequence (`first - 1`
    ///   when none was).
    package func foldInChunks(
        from first: UInt64, through: UInt64, chunk: UInt64 = 200_000,
        forEachItem: (Transaction, UInt64, UInt64, (UInt64, UInt32, Int64, LogItem) throws -> Bool) throws -> Void,
        afterCommit: () -> Void = {}
    ) throws -> (events: UInt64, last: UInt64) {
        var next = first
        var events: UInt64 = 0
        var last = first - 1
        while true {
            let lastBefore = last
            let (folded, reachedEnd) = try views.environment.write(onRetry: {
                rollBack(); last = lastBefore
            }) { txn -> (UInt64, Bool) in
                var count: UInt64 = 0
                var end = true
                try forEachItem(txn, next, through) { sequence, run, time, item in
                    if count == chunk { end = false; return false }
                    switch item {
                    case let .created(parent, name, m):
                        // The names stay in the log's pages: nothing copied per entry.
                        try applyCreated(txn, sequence: sequence, parent: parent, name: name, metadata: m)
                    case let .other(event):
                        try apply(txn, EventRecord(sequence: sequence, run: run, timeMs: time, event: event))
                    case .unbuilt:
                        break  // every type is built: the fold asks the log for all
                    }
                    last = sequence
                    count += 1
                    return true
                }
                try flush(txn, lastSequence: last)
                return (count, end)
            }
            didCommit()
            afterCommit()
            events += folded
            next = last + 1
            if reachedEnd { return (events, last) }
        }
    }

    // MARK: - Listings

    private func recycleListings() {
        for listing in listings.values where listing.isWorthKeeping && spareListings.count < 65_536 {
            listing.reset()
            spareListings.append(listing)
        }
        listings.removeAll(keepingCapacity: true)
        lastListingID = 0
        lastListing = nil
    }

    /// The children of directory `id` as the open transaction sees them.
    @inline(__always)
    func listing(_ txn: Transaction, _ id: UInt64) throws -> PendingListing {
        // A directory's events come together: most look-ups are the one before.
        if id == lastListingID, let last = lastListing { return last.takeUnretainedValue() }
        if let listing = listings[DirectoryKey(id)] {
            lastListingID = id
            lastListing = Unmanaged.passUnretained(listing)
            return listing
        }
        let result = spareListings.popLast() ?? PendingListing()
        if !unwritten.contains(DirectoryKey(id)) {
            try Views.withIDKey(id) { k in
                _ = try txn.get(views.entries, key: k) { try result.load(views, txn, dirID: id, stored: $0) }
            }
        }
        listings[DirectoryKey(id)] = result
        lastListingID = id
        lastListing = Unmanaged.passUnretained(result)
        return result
    }

    private func entry(_ txn: Transaction, parent: UInt64, name: [UInt8]) throws -> EntryMetadata? {
        let listing = try listing(txn, parent)
        return name.withUnsafeBytes { listing.lookUp($0) }
    }

    // MARK: - Directory rows

    func record(_ txn: Transaction, _ id: UInt64) throws -> DirectoryRecord? {
        let key = DirectoryKey(id)
        if let row = dirty[key] { return row }
        if let row = committed[key] { return row }
        if id > (try highestStored(txn)) { return nil }
        let row = try views.directory(txn, id)
        if let row { committed[key] = row }
        return row
    }

    /// No directory row has a higher id than this (read once per transaction at most).
    func highestStored(_ txn: Transaction) throws -> UInt64 {
        if let known = highestStoredDirectory { return known }
        let last = try lastKey(txn, views.dirs)
        highestStoredDirectory = last
        return last
    }

    /// The last id key of `db` (keys are ids, big-endian); 0 when it is empty.
    private func lastKey(_ txn: Transaction, _ db: Database) throws -> UInt64 {
        try txn.withCursor(db) { cursor in
            try cursor.last().map { UInt64(bigEndian: $0.key.loadUnaligned(as: UInt64.self)) }
        } ?? 0
    }

    /// Adds the pending deltas to the directories' totals and to their ancestors'. Each
    /// directory is visited once per flush however many below it changed: the deepest
    /// first (highest id first, which is deepest first within a walk), its delta added to
    /// its parent's before the parent's turn comes. A parent with a higher id than its
    /// child (after a move) is only visited once more.
    func carryDeltas(_ txn: Transaction) throws {
        settleRunningDelta()
        guard !pendingDeltas.isEmpty else { return }
        var heap = IDHeap(pendingDeltas.keys.lazy.map(\.id))
        // A directory popped after a lower id was reached again through a parent with a
        // higher id than its child: at most once per level above it, unless the parents
        // go round in a cycle.
        var previous = UInt64.max
        var revisits: [DirectoryKey: Int] = [:]
        while let id = heap.popMax() {
            guard let delta = pendingDeltas.removeValue(forKey: DirectoryKey(id)), !delta.isZero else { continue }
            if id > previous {
                revisits[DirectoryKey(id), default: 0] += 1
                if revisits[DirectoryKey(id)]! > 1_000_000 { throw ViewError.corrupt("directory \(id) has a parent cycle") }
            }
            previous = id
            guard var row = try record(txn, id) else {
                throw ViewError.corrupt("directory \(id) is missing from the directory-size view")
            }
            try willChange(txn, id)
            row.totals += delta
            dirty[DirectoryKey(id)] = row
            guard row.parent != 0 else { continue }
            let parent = DirectoryKey(row.parent)
            if pendingDeltas[parent] == nil {
                pendingDeltas[parent] = delta
                heap.insert(row.parent)
            } else {
                pendingDeltas[parent]! += delta
            }
        }
        pendingDeltas.removeAll(keepingCapacity: true)
        runningDeltaParent = nil
    }

    @inline(__always)
    func addDelta(_ parent: UInt64, _ delta: DirectoryTotals) {
        if parent == runningDeltaParent {
            runningDelta += delta
            return
        }
        settleRunningDelta()
        runningDeltaParent = parent
        runningDelta = delta
    }

    private func settleRunningDelta() {
        guard let parent = runningDeltaParent else { return }
        pendingDeltas[DirectoryKey(parent), default: DirectoryTotals()] += runningDelta
        runningDeltaParent = nil
    }

    /// What du counts for an entry itself: its blocks and its size. Nothing for an entry
    /// whose blocks were not recorded (an older schema's: the next rescan fills them in),
    /// nor for a directory not entered (another filesystem, which `du -x` skips).
    @inline(__always)
    static func ownSizes(_ m: EntryMetadata) -> (disk: UInt64, apparent: UInt64) {
        guard m.hasOwnership, m.kind != .directory || m.dirID != 0 else { return (0, 0) }
        return (m.diskBytes, m.size)
    }

    /// What an entry adds to its ancestors' totals (its own subtree excluded). A shared
    /// inode's disk and apparent bytes are added once per directory by `addLink` instead.
    @inline(__always)
    static func ownContribution(_ m: EntryMetadata) -> DirectoryTotals {
        let own = m.isSharedInode ? (disk: 0, apparent: 0) : ownSizes(m)
        switch m.kind {
        case .file:
            return DirectoryTotals(size: m.size, files: 1, diskBytes: own.disk, apparentBytes: own.apparent)
        case .directory: return DirectoryTotals(directories: 1, diskBytes: own.disk, apparentBytes: own.apparent)
        case .symlink, .other: return DirectoryTotals(diskBytes: own.disk, apparentBytes: own.apparent)
        }
    }

    // MARK: - Events

    /// Folds any record (replay, rare live events).
    package func apply(_ txn: Transaction, _ record: EventRecord) throws {
        switch record.event {
        case let .jobStarted(root, rootDirID, _, _, rootMetadata):
            try applyJobStarted(txn, root: root, rootDirID: rootDirID, rootMetadata: rootMetadata)
        case let .entryCreated(parent, name, m):
            try name.withUnsafeBytes { try applyCreated(txn, sequence: record.sequence, parent: parent, name: $0, metadata: m) }
        case let .entryUpdated(parent, name, _, new):
            try name.withUnsafeBytes {
                try applyCreated(txn, sequence: record.sequence, parent: parent, name: $0, metadata: new, replacing: true)
            }
        case let .entryRemoved(parent, name):
            try name.withUnsafeBytes { try applyRemoved(txn, parent: parent, name: $0) }
        case let .entryMoved(fromParent, fromName, toParent, toName, m):
            try applyMoved(txn, fromParent: fromParent, fromName: fromName, toParent: toParent, toName: toName, metadata: m)
        case let .directoryListed(dirID, _):
            try clearIncomplete(txn, dirID)
        case let .nonCriticalError(parent, name, _, operation) where operation != .readExcludesFile:
            try markIncomplete(txn, parent: parent, name: name, operation: operation)
        case .nonCriticalError:
            break  // a rules file outside the listing: the listing itself is complete
        case let .pathRejected(parent, name, rule):
            guard let rejected = views.rejected else { break }
            mayHaveRejections = true
            try name.withUnsafeBytes { n in
                try Views.withEntryKey(parent, n) { key in try rule.withUnsafeBytes { try txn.put(rejected, key: key, value: $0) } }
            }
        case .jobResumed:
            // The resumed writer starts with no fresh directories; a replay must not
            // remember them either, or the two skip different lookups.
            fresh.removeAll(keepingCapacity: true)
        case .jobPaused, .jobCompleted, .jobFailed:
            try beginEpoch(txn, at: record.sequence)
        case .snapshotTaken:
            break
        }
    }

    /// A run starts at `root`: the first run of a root creates its row. Roots indexed
    /// before inside it are dropped: this root's walk indexes them again as its own.
    package func applyJobStarted(_ txn: Transaction, root: [UInt8], rootDirID: UInt64, rootMetadata: EntryMetadata?) throws {
        fresh.removeAll(keepingCapacity: true)
        unwritten.removeAll(keepingCapacity: true)
        var rootMetadata = rootMetadata
        rootMetadata?.dirID = rootDirID
        if var row = try record(txn, rootDirID) {
            // A root's own sizes come with each run that starts at it; nothing is above it.
            if let rootMetadata {
                let own = Self.ownSizes(rootMetadata)
                if own.disk != row.ownDiskBytes || own.apparent != row.ownApparentBytes {
                    try willChange(txn, rootDirID)
                    row.setOwn(rootMetadata)
                    dirty[DirectoryKey(rootDirID)] = row
                }
            }
            return
        }
        for nested in try views.roots(txn) where PathBytes.isBelow(nested.path, root) {
            try carryDeltas(txn)
            try unlinkBelow(txn, nested.dirID)
            try carryDeltas(txn)
            try removeSubtree(txn, nested.dirID)
            try Views.rootKey(nested.path).withUnsafeBytes { k in _ = try txn.delete(views.roots, key: k) }
        }
        var row = DirectoryRecord(parent: 0, name: root)
        row.setOwn(rootMetadata)
        dirty[DirectoryKey(rootDirID)] = row
        markFresh(rootDirID)
        try Views.rootKey(root).withUnsafeBytes { k in
            try Views.rootValue(root, rootDirID).withUnsafeBytes { try txn.put(views.roots, key: k, value: $0) }
        }
    }

    /// An error leaves a listing incomplete: the directory read failed (no name), a name
    /// could not be stat'ed, or a subdirectory could not be opened (that one is marked).
    private func markIncomplete(_ txn: Transaction, parent: UInt64, name: [UInt8], operation: FileOperation) throws {
        var target = parent
        if operation == .openDirectory, !name.isEmpty,
            let m = try entry(txn, parent: parent, name: name), m.kind == .directory, m.dirID != 0
        {
            target = m.dirID
        }
        mayHaveIncomplete = true
        try Views.withIDKey(target) { k in try txn.put(views.incomplete, key: k, value: UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    private func markFresh(_ id: UInt64) {
        if fresh.insert(DirectoryKey(id)).inserted { freshInTransaction.append(id) }
        unwritten.insert(DirectoryKey(id))
    }

    /// An entry appeared (`EntryCreated` at `sequence`) or changed (`EntryUpdated`,
    /// `replacing`): its row becomes `metadata`, and the totals above it move by the difference.
    @inline(__always)
    package func applyCreated(
        _ txn: Transaction, sequence: UInt64, parent: UInt64, name: UnsafeRawBufferPointer,
        metadata m: EntryMetadata, replacing: Bool = false
    ) throws {
        // A first listing's next file, the most common event: no reference counting, no
        // table looked up.
        if !replacing, m.kind != .directory, m.nlink < 2, parent == lastListingID, mayHaveRejections == false, let last = lastListing,
            last._withUnsafeGuaranteedRef({ $0.appendInOrder(sequence: sequence, name: name, metadata: m) })
        {
            addDelta(parent, Self.ownContribution(m))
            return
        }
        let listing = try listing(txn, parent)
        // The first listing of a directory: a new name past the last, nothing to retract.
        let appended = !replacing && listing.appendInOrder(sequence: sequence, name: name, metadata: m)
        if !appended, let old = listing.lookUp(name) {
            try retract(
                txn, parent: parent, name: name, old, keepingDirectory: old.kind == .directory && m.kind == .directory && old.dirID == m.dirID)
        }
        if try rejectionsPossible(txn), !fresh.contains(DirectoryKey(parent)) {
            try Views.withEntryKey(parent, name) { key in try dropRejection(txn, key: key) }
        }
        if replacing {
            listing.set(name, m)
        } else if !appended {
            listing.create(sequence: sequence, name: name, metadata: m)
        }
        if m.kind == .directory, m.dirID != 0 {
            if var row = try record(txn, m.dirID) {
                let own = Self.ownSizes(m)
                if own.disk != row.ownDiskBytes || own.apparent != row.ownApparentBytes {
                    try willChange(txn, m.dirID)
                    row.setOwn(m)
                    dirty[DirectoryKey(m.dirID)] = row
                }
            } else {
                var row = DirectoryRecord(parent: parent, name: Array(name))
                row.setOwn(m)
                dirty[DirectoryKey(m.dirID)] = row
                markFresh(m.dirID)
            }
            try setDirectoryInode(txn, m)
        }
        addDelta(parent, Self.ownContribution(m))
        if m.isSharedInode { try addLink(txn, parent: parent, name: name, m) }
    }

    private func setDirectoryInode(_ txn: Transaction, _ m: EntryMetadata) throws {
        guard keepsDirectoryInodes else { return }
        var id = m.dirID.bigEndian
        try Views.withInodeKey(device: m.device, inode: m.inode) { k in
            try withUnsafeBytes(of: &id) { try txn.put(views.dirInodes, key: k, value: $0) }
        }
    }

    private func clearDirectoryInode(_ txn: Transaction, _ m: EntryMetadata) throws {
        guard keepsDirectoryInodes else { return }
        // Only if the key still names this directory: another may have taken the inode.
        try Views.withInodeKey(device: m.device, inode: m.inode) { k in
            let current = try txn.get(views.dirInodes, key: k) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
            if current == m.dirID { _ = try txn.delete(views.dirInodes, key: k) }
        }
    }

    /// Takes an old row's contribution out of its ancestors; drops its subtree unless the
    /// same directory stays (a metadata update of a directory).
    private func retract(
        _ txn: Transaction, parent: UInt64, name: UnsafeRawBufferPointer, _ old: EntryMetadata, keepingDirectory: Bool
    ) throws {
        addDelta(parent, DirectoryTotals() - Self.ownContribution(old))
        if old.isSharedInode { try removeLink(txn, parent: parent, name: name, old) }
        if old.kind == .directory && old.dirID != 0 { try clearDirectoryInode(txn, old) }
        if old.kind == .directory && !keepingDirectory {
            try carryDeltas(txn)
            // Each shared inode below leaves as its own names would, so that a directory
            // above that holds another of its names keeps counting it.
            if try unlinkBelow(txn, old.dirID) { try carryDeltas(txn) }
            if let row = try record(txn, old.dirID) {
                addDelta(parent, DirectoryTotals() - row.totals)
            }
            try removeSubtree(txn, old.dirID)
        }
    }

    /// `EntryRemoved`: the entry and, for a directory, everything below it leave the views.
    package func applyRemoved(_ txn: Transaction, parent: UInt64, name: UnsafeRawBufferPointer) throws {
        let listing = try listing(txn, parent)
        guard let old = listing.lookUp(name) else {
            // A rejected name that is gone from its directory.
            try Views.withEntryKey(parent, name) { key in try dropRejection(txn, key: key) }
            return
        }
        try retract(txn, parent: parent, name: name, old, keepingDirectory: false)
        listing.remove(name)
    }

    /// `EntryMoved`: the entry changes place; a directory keeps its id, so its subtree stays.
    package func applyMoved(
        _ txn: Transaction, fromParent: UInt64, fromName: [UInt8], toParent: UInt64,
        toName: [UInt8], metadata m: EntryMetadata
    ) throws {
        let source = try listing(txn, fromParent)
        guard let old = fromName.withUnsafeBytes({ source.lookUp($0) }) else { return }
        try carryDeltas(txn)
        // Shared inodes leave with the old place and are counted again at the new one:
        // which directories hold one of their names changes.
        let sharedBelow = old.kind == .directory && old.dirID != 0 ? try sharedInodes(txn, below: old.dirID) : []
        for link in sharedBelow { try link.name.withUnsafeBytes { try removeLink(txn, parent: link.parent, name: $0, link.metadata) } }
        if old.isSharedInode { try fromName.withUnsafeBytes { try removeLink(txn, parent: fromParent, name: $0, old) } }
        try carryDeltas(txn)
        var moved = Self.ownContribution(old)
        if old.kind == .directory, let row = try record(txn, old.dirID) { moved += row.totals }
        fromName.withUnsafeBytes { source.remove($0) }
        addDelta(fromParent, DirectoryTotals() - moved)
        try carryDeltas(txn)
        // Whatever sat at the destination is replaced.
        let destination = try listing(txn, toParent)
        try toName.withUnsafeBytes { n in
            if let existing = destination.lookUp(n) {
                try retract(txn, parent: toParent, name: n, existing, keepingDirectory: false)
            }
            try Views.withEntryKey(toParent, n) { key in try dropRejection(txn, key: key) }
            destination.set(n, m)
        }
        var added = Self.ownContribution(m)
        if m.kind == .directory, var row = try record(txn, m.dirID) {
            try willChange(txn, m.dirID)
            added += row.totals
            row.parent = toParent
            row.name = toName
            row.setOwn(m)
            dirty[DirectoryKey(m.dirID)] = row
        }
        addDelta(toParent, added)
        if m.isSharedInode { try toName.withUnsafeBytes { try addLink(txn, parent: toParent, name: $0, m) } }
        for link in sharedBelow { try link.name.withUnsafeBytes { try addLink(txn, parent: link.parent, name: $0, link.metadata) } }
    }

    /// Deletes every row below directory `id`, and its own directory row.
    private func removeSubtree(_ txn: Transaction, _ id: UInt64) throws {
        let listing = try listing(txn, id)
        var directories: [EntryMetadata] = []
        listing.forEach { _, m in
            if m.kind == .directory && m.dirID != 0 { directories.append(m) }
        }
        listing.removeAll()
        for m in directories {
            try clearDirectoryInode(txn, m)
            try removeSubtree(txn, m.dirID)
        }
        if let rejected = views.rejected, try rejectionsPossible(txn) {
            var names: [[UInt8]] = []
            try views.forEachRejection(txn, of: id) { name, _ in names.append(Array(name)) }
            for name in names {
                try name.withUnsafeBytes { n in try Views.withEntryKey(id, n) { key in _ = try txn.delete(rejected, key: key) } }
            }
        }
        settleRunningDelta()
        pendingDeltas[DirectoryKey(id)] = nil
        try willChange(txn, id)
        dirty[DirectoryKey(id)] = .some(nil)
        fresh.remove(DirectoryKey(id))
        try clearIncomplete(txn, id)
    }

    /// A directory listed again in full, or gone, is no longer incomplete.
    private func clearIncomplete(_ txn: Transaction, _ id: UInt64) throws {
        if mayHaveIncomplete == nil { mayHaveIncomplete = try views.hasIncompleteListings(txn) }
        guard mayHaveIncomplete == true else { return }
        try Views.withIDKey(id) { k in _ = try txn.delete(views.incomplete, key: k) }
    }
}

extension DirectoryTotals {
    static func - (a: DirectoryTotals, b: DirectoryTotals) -> DirectoryTotals {
        var r = a
        r -= b
        return r
    }
}

/// A max-heap of directory ids, for `carryDeltas`.
struct IDHeap {
    private var items: [UInt64]

    init<S: Sequence>(_ ids: S) where S.Element == UInt64 {
        items = Array(ids)
        var i = items.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    mutating func insert(_ id: UInt64) {
        items.append(id)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[parent] < items[child] else { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func popMax() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        siftDown(0)
        return top
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < items.count else { return }
            var largest = left
            if left + 1 < items.count && items[left + 1] > items[left] { largest = left + 1 }
            guard items[largest] > items[parent] else { return }
            items.swapAt(parent, largest)
            parent = largest
        }
    }
}
