import Events
internal import LMDB

#if canImport(Glibc)
    import Glibc
#endif

/// Rule: a directory counts an inode's disk and apparent bytes once, however many of its
/// names lie below it, as `du` does; every other total counts names.
///
/// Why this way: only non-directories with more than one link can be met twice, and they
/// are rare, so they alone go through the `links` view (one row per inode, with the bytes
/// counted for it, and one per name) and every other entry keeps the plain per-name path.
/// The directories that count an inode are the ancestors of any of its names: a name
/// added below a directory that already holds another name changes nothing from there up.
/// The fold carries deltas up the parent chain, so a name adds its bytes at its directory
/// and takes them back at the first ancestor that held the inode already; a name leaving
/// does the reverse. A directory that moves or goes first lets every shared name below it
/// leave as if alone, then (for a move) brings them back at their new place.
extension ViewFold {
    typealias Bytes = (disk: UInt64, apparent: UInt64)

    /// A name of a shared inode, found below a directory.
    struct SharedName {
        var parent: UInt64
        var name: [UInt8]
        var metadata: EntryMetadata
    }

    private func linksPossible(_ txn: Transaction) throws -> Bool {
        guard let links = views.links else { return false }
        if let known = mayHaveLinks { return known }
        let has = try txn.count(links) > 0
        mayHaveLinks = has
        return has
    }

    /// `body` with the 16-byte key of an inode.
    private static func withInodeKey<R>(_ m: EntryMetadata, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Views.withInodeKey(device: m.device, inode: m.inode, body)
    }

    /// `body` with the key of one name of an inode: inode key, parent, name.
    private static func withNameKey<R>(
        _ m: EntryMetadata, _ parent: UInt64, _ name: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: 24 + name.count, alignment: 8) { key in
            key.storeBytes(of: m.device.bigEndian, toByteOffset: 0, as: UInt64.self)
            key.storeBytes(of: m.inode.bigEndian, toByteOffset: 8, as: UInt64.self)
            key.storeBytes(of: parent.bigEndian, toByteOffset: 16, as: UInt64.self)
            if name.count > 0 { (key.baseAddress! + 24).copyMemory(from: name.baseAddress!, byteCount: name.count) }
            return try body(UnsafeRawBufferPointer(key))
        }
    }

    /// The bytes counted for an inode (nil when none of its names is indexed) and the
    /// parents and names of its names.
    private func inode(_ txn: Transaction, _ m: EntryMetadata) throws -> (counted: Bytes?, names: [(UInt64, [UInt8])]) {
        guard let links = views.links else { return (nil, []) }
        return try Self.withInodeKey(m) { prefix in
            try txn.withCursor(links) { cursor in
                var counted: Bytes?
                var names: [(UInt64, [UInt8])] = []
                var row = try cursor.seek(atLeast: prefix)
                while let (key, value) = row, key.count >= 16, memcmp(key.baseAddress!, prefix.baseAddress!, 16) == 0 {
                    if key.count == 16 {
                        var r = ByteReader(buffer: value)
                        counted = (UInt64(bitPattern: try r.zigzag()), UInt64(bitPattern: try r.zigzag()))
                    } else if key.count >= 24 {
                        names.append((UInt64(bigEndian: key.loadUnaligned(fromByteOffset: 16, as: UInt64.self)), Array(key[24...])))
                    }
                    row = try cursor.next()
                }
                return (counted, names)
            }
        }
    }

    private func setCounted(_ txn: Transaction, _ m: EntryMetadata, _ bytes: Bytes?) throws {
        guard let links = views.links else { return }
        try Self.withInodeKey(m) { key in
            guard let bytes else {
                _ = try txn.delete(links, key: key)
                return
            }
            var w = ByteWriter(capacity: 24)
            w.zigzag(Int64(bitPattern: bytes.disk))
            w.zigzag(Int64(bitPattern: bytes.apparent))
            try txn.put(links, key: key, value: w.bytes)
        }
    }

    /// Adds `bytes` to `from` and its ancestors up to, not including, the first one in
    /// `covered`; every directory passed joins `covered`.
    private func cover(_ txn: Transaction, from: UInt64, _ covered: inout Set<UInt64>, _ bytes: Bytes) throws {
        let delta = DirectoryTotals(diskBytes: bytes.disk, apparentBytes: bytes.apparent)
        addDelta(from, delta)
        var id = from
        var depth = 0
        while id != 0 {
            if !covered.insert(id).inserted {
                addDelta(id, DirectoryTotals() - delta)
                return
            }
            guard let row = try record(txn, id) else { throw ViewError.corrupt("directory \(id) is missing from the directory-size view") }
            id = row.parent
            depth += 1
            if depth > 100_000 { throw ViewError.corrupt("directory \(from) has a parent cycle") }
        }
    }

    /// The directories holding any of `names`: the union of their ancestor chains.
    private func ancestors(_ txn: Transaction, of names: [(UInt64, [UInt8])]) throws -> Set<UInt64> {
        var covered: Set<UInt64> = []
        for (parent, _) in names {
            var id = parent
            while id != 0, covered.insert(id).inserted {
                guard let row = try record(txn, id) else { throw ViewError.corrupt("directory \(id) is missing from the directory-size view") }
                id = row.parent
                if covered.count > 10_000_000 { throw ViewError.corrupt("directory \(parent) has a parent cycle") }
            }
        }
        return covered
    }

    /// A name of a shared inode is indexed at `parent`.
    func addLink(_ txn: Transaction, parent: UInt64, name: UnsafeRawBufferPointer, _ m: EntryMetadata) throws {
        guard let links = views.links else { return }
        mayHaveLinks = true
        let (counted, names) = try inode(txn, m)
        let own = Self.ownSizes(m)
        if names.contains(where: { $0.0 == parent && $0.1.withUnsafeBytes { compareNames($0, name) == 0 } }) {
            return  // already counted (a fold never adds a name twice; a guard, not a path)
        }
        var covered: Set<UInt64> = []
        if let counted, !names.isEmpty, counted != own {
            // The inode changed: every directory counting it counts the new bytes.
            let change = (disk: own.disk &- counted.disk, apparent: own.apparent &- counted.apparent)
            for (p, _) in names { try cover(txn, from: p, &covered, change) }
        } else if !names.isEmpty {
            covered = try ancestors(txn, of: names)
        }
        try cover(txn, from: parent, &covered, own)
        try setCounted(txn, m, own)
        try Self.withNameKey(m, parent, name) { key in try txn.put(links, key: key, value: UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    /// A name of a shared inode leaves `parent`.
    func removeLink(_ txn: Transaction, parent: UInt64, name: UnsafeRawBufferPointer, _ m: EntryMetadata) throws {
        guard let links = views.links else { return }
        let (counted, names) = try inode(txn, m)
        let others = names.filter { !($0.0 == parent && $0.1.withUnsafeBytes { compareNames($0, name) == 0 }) }
        guard let counted, others.count < names.count else { return }
        var covered = try ancestors(txn, of: others)
        try cover(txn, from: parent, &covered, (0 &- counted.disk, 0 &- counted.apparent))
        try Self.withNameKey(m, parent, name) { key in _ = try txn.delete(links, key: key) }
        if others.isEmpty { try setCounted(txn, m, nil) }
    }

    /// Every name of a shared inode below directory `id`, at any depth.
    func sharedInodes(_ txn: Transaction, below id: UInt64) throws -> [SharedName] {
        guard try linksPossible(txn) else { return [] }
        var found: [SharedName] = []
        var stack = [id]
        while let dir = stack.popLast() {
            try listing(txn, dir).forEach { name, m in
                if m.isSharedInode { found.append(SharedName(parent: dir, name: Array(name), metadata: m)) }
                if m.kind == .directory && m.dirID != 0 { stack.append(m.dirID) }
            }
        }
        return found
    }

    /// Lets every shared name below directory `id` leave (before the directory goes);
    /// whether there was any.
    @discardableResult
    func unlinkBelow(_ txn: Transaction, _ id: UInt64) throws -> Bool {
        let names = try sharedInodes(txn, below: id)
        for link in names { try link.name.withUnsafeBytes { try removeLink(txn, parent: link.parent, name: $0, link.metadata) } }
        return !names.isEmpty
    }
}
