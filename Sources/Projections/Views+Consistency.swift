import Events
package import LMDB

/// Whether the views hold together: the invariants every run relies on, checked on their
/// own, with no replay.
///
/// A replay reproduces whatever the log says, so views that a run would refuse ("directory
/// 2 is missing from the directory-size view") can still equal a replay of their log. This
/// check is what catches them: every directory entry has a row that names it back, every
/// row but a root's sits in its parent's listing, every listing belongs to a row, every
/// row is reached from a root, every directory's totals are the sums of what is below it,
/// and the name index holds exactly the listings' names.
extension Views {
    /// The first broken invariant, in words; nil when the views hold together.
    package func firstInconsistency(_ txn: Transaction) throws -> String? {
        var rows: [DirectoryKey: DirectoryRecord] = [:]
        try txn.withCursor(dirs) { cursor in
            var row = try cursor.first()
            while let (key, value) = row {
                rows[DirectoryKey(UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)))] = try DirectoryRecord(decoding: value)
                row = try cursor.next()
            }
        }
        func named(_ id: UInt64) -> String {
            let path = (try? self.path(txn, of: id)).flatMap { $0 }
            return "directory \(id)" + (path.map { " (\(String(decoding: $0, as: UTF8.self)))" } ?? "")
        }
        let rootIDs = try roots(txn).map(\.dirID)
        for id in rootIDs {
            guard let row = rows[DirectoryKey(id)] else { return "root \(named(id)) has no row in the directory-size view" }
            if row.parent != 0 { return "root \(named(id)) has a parent, \(row.parent)" }
        }
        // What each directory's listing adds up to, and the directories below each.
        var direct: [DirectoryKey: DirectoryTotals] = [:]
        var subdirectories: [DirectoryKey: [UInt64]] = [:]
        // The shared inodes (counted once per directory) each listing holds, and the bytes
        // the links view counts for each.
        var directShared: [DirectoryKey: Set<InodeKey>] = [:]
        var counted: [InodeKey: (disk: UInt64, apparent: UInt64)] = [:]
        if let links {
            try txn.withCursor(links) { cursor in
                var row = try cursor.first()
                while let (key, value) = row {
                    if key.count == 16 {
                        var r = ByteReader(buffer: value)
                        counted[InodeKey(key)] = (UInt64(bitPattern: try r.zigzag()), UInt64(bitPattern: try r.zigzag()))
                    }
                    row = try cursor.next()
                }
            }
        }
        var problem: String?
        try forEachListing(txn) { id, value in
            guard problem == nil else { return }
            guard rows[DirectoryKey(id)] != nil else {
                problem = "the file-path view lists children of directory \(id), which has no row in the directory-size view"
                return
            }
            var totals = DirectoryTotals()
            try forEachStoredChild(txn, of: id, value: value) { name, m in
                totals += ViewFold.ownContribution(m)
                if m.isSharedInode {
                    let key = InodeKey(device: m.device, inode: m.inode)
                    guard counted[key] != nil else {
                        problem =
                            "\(named(id)) holds \"\(String(decoding: name, as: UTF8.self))\", of \(m.nlink) links, which the links view does not count"
                        return false
                    }
                    directShared[DirectoryKey(id), default: []].insert(key)
                }
                switch m.kind {
                case .file, .symlink, .other: break
                case .directory:
                    guard m.dirID != 0 else { return true }
                    guard let row = rows[DirectoryKey(m.dirID)] else {
                        problem =
                            "\(named(id)) holds \"\(String(decoding: name, as: UTF8.self))\" as directory \(m.dirID), which has no row in the directory-size view"
                        return false
                    }
                    guard row.parent == id, row.name.elementsEqual(name) else {
                        problem =
                            "\(named(id)) holds \"\(String(decoding: name, as: UTF8.self))\" as directory \(m.dirID), whose row says it is \"\(String(decoding: row.name, as: UTF8.self))\" in directory \(row.parent)"
                        return false
                    }
                    let own = ViewFold.ownSizes(m)
                    guard row.ownDiskBytes == own.disk && row.ownApparentBytes == own.apparent else {
                        problem =
                            "\(named(m.dirID)) records its own size as \(row.ownDiskBytes) disk and \(row.ownApparentBytes) apparent bytes; its entry says \(own.disk) and \(own.apparent)"
                        return false
                    }
                    subdirectories[DirectoryKey(id), default: []].append(m.dirID)
                }
                return true
            }
            direct[DirectoryKey(id)] = totals
        }
        if let problem { return problem }
        // Every row but a root's is in its parent's listing (checked above from the listing's side).
        let listed = Set(subdirectories.values.joined().map(DirectoryKey.init))
        let rootKeys = Set(rootIDs.map(DirectoryKey.init))
        for (key, row) in rows where !listed.contains(key) && !rootKeys.contains(key) {
            return row.parent == 0
                ? "\(named(key.id)) has no parent and is not a root"
                : "\(named(key.id)) is not in the listing of its parent, directory \(row.parent)"
        }
        // Totals, deepest first: a post-order walk from each root, which also finds rows no
        // root reaches (a cycle of parents).
        var reached = 0
        for root in rootIDs {
            var stack: [(id: UInt64, expanded: Bool)] = [(root, false)]
            var sums: [DirectoryKey: DirectoryTotals] = [:]
            var sharedBelow: [DirectoryKey: Set<InodeKey>] = [:]
            while let (id, expanded) = stack.popLast() {
                let key = DirectoryKey(id)
                let children = subdirectories[key] ?? []
                if !expanded {
                    reached += 1
                    stack.append((id, true))
                    for child in children { stack.append((child, false)) }
                    continue
                }
                var total = direct[key] ?? DirectoryTotals()
                var shared = directShared[key] ?? []
                for child in children {
                    let childKey = DirectoryKey(child)
                    var childTotal = sums.removeValue(forKey: childKey) ?? DirectoryTotals()
                    // Shared inodes are summed once at each level, not carried.
                    if let below = sharedBelow.removeValue(forKey: childKey) {
                        for inode in below { childTotal -= DirectoryTotals(diskBytes: counted[inode]!.disk, apparentBytes: counted[inode]!.apparent) }
                        shared.formUnion(below)
                    }
                    total += childTotal
                }
                for inode in shared { total += DirectoryTotals(diskBytes: counted[inode]!.disk, apparentBytes: counted[inode]!.apparent) }
                guard rows[key]!.totals == total else {
                    let stored = rows[key]!.totals
                    return
                        "\(named(id)) totals \(stored.size) bytes, \(stored.files) files, \(stored.directories) dirs, \(stored.diskBytes) disk and \(stored.apparentBytes) apparent bytes; what is below it adds up to \(total.size), \(total.files), \(total.directories), \(total.diskBytes), \(total.apparentBytes)"
                }
                sums[key] = total
                if !shared.isEmpty { sharedBelow[key] = shared }
            }
        }
        if reached != rows.count { return "\(rows.count - reached) directories are not reached from any root" }
        return try nameIndexInconsistency(txn)
    }
}

/// A device and inode: what du counts once.
struct InodeKey: Hashable {
    var device: UInt64
    var inode: UInt64

    init(device: UInt64, inode: UInt64) { self.device = device; self.inode = inode }

    /// From the first 16 bytes of a `links` key.
    init(_ key: UnsafeRawBufferPointer) {
        device = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
        inode = UInt64(bigEndian: key.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }
}
