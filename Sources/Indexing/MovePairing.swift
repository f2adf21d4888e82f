import Events
internal import LMDB
import Projections

/// How a rescan finds moves (Docs/RESCANS.md, rules 3 and 4). Files that appear and
/// disappear are held until the walk ends, then paired by (device, inode): a pair is one
/// move, since a file's old and new places can be listed in either order. A directory
/// that appears under a new name is looked up by inode at once instead, so that a moved
/// directory is one move and its subtree is compared in place instead of being indexed
/// again.
struct MovePairing {
    let views: Views
    /// Creations and removals held back until the end of the walk.
    private(set) var creations: [DeferredEntry] = []
    private(set) var removals: [DeferredEntry] = []
    /// Directories moved in this run: their old place is not a removal.
    private var movedDirectories: Set<UInt64> = []
    /// Directories whose rows an event of this run already dropped (their name now holds
    /// something else, or the rules now reject it): never a move source, nor is anything
    /// below them, since a move's source must still be in the views when it is folded.
    private var replacedDirectories: Set<UInt64> = []
    /// The children of the directory a moved directory was last found leaving, valid for
    /// the current snapshot: many directories moving out of one parent cost one read of it.
    private var sourceChildren: (id: UInt64, children: Children)?

    init(views: Views) {
        self.views = views
    }

    /// Held-back creations beyond this are written at once (memory stays bounded on a
    /// rescan that finds a huge new subtree); those can no longer pair up as moves.
    static let creationLimit = 100_000

    /// How many creations and removals are held back.
    var heldBack: Int { creations.count + removals.count }

    mutating func holdCreation(_ entry: DeferredEntry) { creations.append(entry) }
    mutating func holdRemoval(_ entry: DeferredEntry) { removals.append(entry) }

    /// The rows of directory `dirID` leave the views in this run.
    mutating func replaced(_ dirID: UInt64) { replacedDirectories.insert(dirID) }

    /// The snapshot was refreshed: what was read through the old one is stale.
    mutating func snapshotChanged() { sourceChildren = nil }

    /// The held-back creations, to be written now as creations.
    mutating func releaseCreations() -> [OutsideChange] {
        let changes = creations.map {
            (
                parent: $0.parent, name: $0.name, change: Change(kind: .created, nameStart: 0, nameLength: 0, metadata: $0.metadata),
                from: MoveSource?.none
            )
        }
        creations = []
        return changes
    }

    // MARK: - Directories, at once

    /// The indexed directory that a directory newly seen at `into` is, by inode, if it
    /// moved there: it must still be indexed at its old place, not be `into` or one of its
    /// ancestors, and not have moved already in this run (nor been created: `fresh`). It
    /// is noted as moved.
    mutating func movedDirectory(_ txn: Transaction, _ m: EntryMetadata, into dirID: UInt64, fresh: Set<DirectoryKey>)
        throws -> (dirID: UInt64, parent: UInt64, name: [UInt8])?
    {
        guard let id = try views.directoryID(txn, device: m.device, inode: m.inode),
            !movedDirectories.contains(id), !fresh.contains(DirectoryKey(id)), !replacedDirectories.contains(id),
            let row = try views.directory(txn, id), row.parent != 0,
            let atOldPlace = try entryAtOldPlace(txn, parent: row.parent, name: row.name),
            atOldPlace.dirID == id, atOldPlace.isSameFile(as: m) || atOldPlace.btimeNs == 0
        else { return nil }
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
        movedDirectories.insert(id)
        return (id, row.parent, row.name)
    }

    private mutating func entryAtOldPlace(_ txn: Transaction, parent: UInt64, name: [UInt8]) throws -> EntryMetadata? {
        if sourceChildren?.id != parent { sourceChildren = (parent, try views.children(txn, of: parent)) }
        return name.withUnsafeBytes { sourceChildren!.children.find($0) }
    }

    // MARK: - Files, at the end of the walk

    /// Pairs the held-back creations and removals by inode into moves (a removal pairs with
    /// the first creation of the same file), and gives what is left as creations and
    /// removals; the old place of a moved directory is no removal.
    mutating func pair() -> [OutsideChange] {
        var removedByInode: [InodeKey: [Int]] = [:]
        for (i, r) in removals.enumerated() where r.metadata.kind != .directory {
            removedByInode[InodeKey(device: r.metadata.device, inode: r.metadata.inode), default: []].append(i)
        }
        var taken = Set<Int>()
        var changes: [OutsideChange] = []
        for c in creations {
            let key = InodeKey(device: c.metadata.device, inode: c.metadata.inode)
            if let i = removedByInode[key]?.first(where: { !taken.contains($0) && removals[$0].metadata.isSameFile(as: c.metadata) }) {
                taken.insert(i)
                let r = removals[i]
                changes.append(
                    (
                        c.parent, c.name, Change(kind: .moved, nameStart: 0, nameLength: 0, metadata: c.metadata),
                        MoveSource(parent: r.parent, name: r.name)
                    ))
            } else {
                changes.append((c.parent, c.name, Change(kind: .created, nameStart: 0, nameLength: 0, metadata: c.metadata), nil))
            }
        }
        for (i, r) in removals.enumerated() where !taken.contains(i) {
            if r.metadata.kind == .directory && movedDirectories.contains(r.metadata.dirID) { continue }
            changes.append((r.parent, r.name, Change(kind: .removed, nameStart: 0, nameLength: 0, metadata: r.metadata), nil))
        }
        creations = []
        removals = []
        return changes
    }
}

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
