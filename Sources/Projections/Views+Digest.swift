import Events
package import LMDB

/// A digest of the views' contents: equal views have equal digests, whichever way they
/// were folded (live, replayed from scratch).
public struct ViewDigest: Sendable, Hashable, CustomStringConvertible {
    /// FNV-1a 64 over every entry of the file-path view (parent id, name, metadata as a
    /// version-1 record encodes it, then blocks, links, owner and group), in key order: the same entries give the same digest
    /// however their listings are stored.
    public var entries: UInt64
    /// The same over the directory-size view.
    public var directories: UInt64
    public var entryCount: Int
    public var directoryCount: Int

    public var description: String {
        "file-path view \(hex(entries)) (\(entryCount) entries), directory-size view \(hex(directories)) (\(directoryCount) dirs)"
    }
}

private func hex(_ v: UInt64) -> String { fixedWidthHex(v) }

extension Views {
    private func digest(_ txn: Transaction, _ db: Database) throws -> (UInt64, Int) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var count = 0
        @inline(__always) func mix(_ bytes: UnsafeRawBufferPointer) {
            for b in bytes { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
            hash = (hash ^ UInt64(bytes.count)) &* 0x0000_0100_0000_01B3
        }
        try txn.withCursor(db) { cursor in
            var row = try cursor.first()
            while let (k, v) = row {
                mix(k); mix(v)
                count += 1
                row = try cursor.next()
            }
        }
        return (hash, count)
    }

    private func entriesDigest(_ txn: Transaction) throws -> (UInt64, Int) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var count = 0
        var buffer = ByteWriter(capacity: 256)
        try forEachListing(txn) { dirID, value in
            try forEachStoredChild(txn, of: dirID, value: value) { name, m in
                buffer.reset()
                buffer.varint(dirID)
                buffer.bytes(name)
                buffer.metadata(m)
                // What schema 3 added, which the schema-1 form has no room for.
                buffer.varint(m.blocks)
                buffer.varint(UInt64(m.nlink))
                buffer.varint(UInt64(m.uid))
                buffer.varint(UInt64(m.gid))
                for b in buffer.bytes { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
                count += 1
                return true
            }
        }
        return (hash, count)
    }

    /// The digest of both views as of `txn`.
    package func digest(_ txn: Transaction) throws -> ViewDigest {
        var e = try entriesDigest(txn)
        let d = try digest(txn, dirs)
        // The name index is made of the listings' names: part of the file-path view's digest.
        if let n = try names.map({ try digest(txn, $0) }), n.1 > 0 { e.0 = (e.0 ^ n.0) &* 0x0000_0100_0000_01B3 }
        // The shared inodes are part of what the sizes are made of.
        let l = try links.map { try digest(txn, $0) } ?? (0, 0)
        let h = try dirHistory.map { try digest(txn, $0) } ?? (0, 0)
        var directories = l.1 == 0 ? d.0 : (d.0 ^ l.0) &* 0x0000_0100_0000_01B3
        if h.1 > 0 { directories = (directories ^ h.0) &* 0x0000_0100_0000_01B3 }
        return ViewDigest(entries: e.0, directories: directories, entryCount: e.1, directoryCount: d.1)
    }

    /// Where two sets of views first differ, as a sentence naming the entry; nil when equal.
    package func firstDifference(_ txn: Transaction, from other: Views) throws -> String? {
        var pairs = [
            ("file-path view", entries, other.entries), ("directory-size view", dirs, other.dirs),
            ("roots", roots, other.roots),
            // What only a rescan reads: a damaged row would misplace a moved directory,
            // or trust a listing that met an error.
            ("directory inodes", dirInodes, other.dirInodes), ("incomplete listings", incomplete, other.incomplete),
        ]
        if let a = rejected, let b = other.rejected { pairs.append(("rejections", a, b)) }
        if let a = links, let b = other.links { pairs.append(("shared inodes", a, b)) }
        if let a = dirHistory, let b = other.dirHistory { pairs.append(("directory-size history", a, b)) }
        if let a = names, let b = other.names { pairs.append(("name index", a, b)) }
        for (name, a, b) in pairs {
            let difference: String? = try txn.withCursor(a) { ca in
                try txn.withCursor(b) { cb in
                    var x = try ca.first(), y = try cb.first()
                    while true {
                        switch (x, y) {
                        case (nil, nil): return nil
                        case let ((k, v)?, nil) where a == entries:
                            return "\(name): " + (try listingDifference(txn, k, v, nil, other: other))
                        case let (nil, (k, v)?) where a == entries:
                            return "\(name): " + (try listingDifference(txn, k, nil, v, other: other))
                        case let ((k, _)?, nil): return "\(name): \(describe(txn, k, db: a)) is only in the first"
                        case let (nil, (k, _)?): return "\(name): \(describe(txn, k, db: a)) is only in the second"
                        case let ((k1, v1)?, (k2, v2)?):
                            if !k1.elementsEqual(k2) {
                                let first = k1.lexicographicallyPrecedes(k2)
                                return "\(name): \(describe(txn, first ? k1 : k2, db: a)) is only in the \(first ? "first" : "second")"
                            }
                            if !v1.elementsEqual(v2) {
                                if a == entries { return "\(name): " + (try listingDifference(txn, k1, v1, v2, other: other)) }
                                return "\(name): \(describe(txn, k1, db: a)) differs"
                            }
                            x = try ca.next(); y = try cb.next()
                        }
                    }
                }
            }
            if let difference { return difference }
        }
        return nil
    }

    /// The first child where two stored listings of one directory differ, named by path.
    private func listingDifference(
        _ txn: Transaction, _ key: UnsafeRawBufferPointer, _ mine: UnsafeRawBufferPointer?,
        _ theirs: UnsafeRawBufferPointer?, other: Views
    ) throws -> String {
        let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
        func children(_ views: Views, _ value: UnsafeRawBufferPointer?) throws -> [([UInt8], EntryMetadata)] {
            var result: [([UInt8], EntryMetadata)] = []
            if let value {
                try views.forEachStoredChild(txn, of: id, value: value) { n, m in
                    result.append((Array(n), m)); return true
                }
            }
            return result
        }
        let a = try children(self, mine), b = try children(other, theirs)
        let directory = (try? path(txn, of: id)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? "dir#\(id)"
        func named(_ n: [UInt8]) -> String { "\"\(directory)/\(String(decoding: n, as: UTF8.self))\"" }
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i].0.lexicographicallyPrecedes(b[j].0)) { return "\(named(a[i].0)) is only in the first" }
            if i == a.count || b[j].0.lexicographicallyPrecedes(a[i].0) { return "\(named(b[j].0)) is only in the second" }
            if a[i].1 != b[j].1 { return "\(named(a[i].0)) differs" }
            i += 1; j += 1
        }
        return "the listing of \"\(directory)\" is stored differently (the same entries)"
    }

    /// A key of a view as a path when it can be resolved, else its ids.
    private func describe(_ txn: Transaction, _ key: UnsafeRawBufferPointer, db: Database) -> String {
        if db == entries, key.count == 8 {
            let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            if let p = try? path(txn, of: id) { return "the listing of \"\(String(decoding: p, as: UTF8.self))\"" }
            return "the listing of directory \(id)"
        }
        if db == rejected, key.count >= 8 {
            let parent = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            let name = String(decoding: key[8...], as: UTF8.self)
            if let dir = try? path(txn, of: parent) { return "\"\(String(decoding: dir, as: UTF8.self))/\(name)\"" }
            return "entry \"\(name)\" of directory \(parent)"
        }
        if db == names, key.count == 8 {
            let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            return "the names of directories \(id)–\(id + NameIndexFormat.mask)"
        }
        if db == dirInodes, key.count == 16 {
            let device = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            let inode = UInt64(bigEndian: key.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            return "the directory of device \(device), inode \(inode)"
        }
        if db == dirs || db == incomplete, key.count == 8 {
            let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            if let p = try? path(txn, of: id) { return "directory \"\(String(decoding: p, as: UTF8.self))\"" }
            return "directory \(id)"
        }
        return "key \(Array(key).prefix(32))"
    }

    /// Empties both views (before a replay into them).
    package func clear(_ txn: Transaction) throws {
        for db in [entries, dirs, roots, state, dirInodes, incomplete] + (rejected.map { [$0] } ?? []) + (links.map { [$0] } ?? [])
            + (dirHistory.map { [$0] } ?? []) + (names.map { [$0] } ?? [])
        {
            try txn.clear(db)
        }
    }
}
