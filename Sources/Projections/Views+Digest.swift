import LMDB

/// A digest of the views' contents: equal views have equal digests, whichever way they
/// were folded (live, replayed from scratch).
public struct ViewDigest: Sendable, Hashable, CustomStringConvertible {
    /// FNV-1a 64 over every key and value of the file-path view, in key order.
    public var entries: UInt64
    /// The same over the directory-size view.
    public var directories: UInt64
    public var entryCount: Int
    public var directoryCount: Int

    public var description: String {
        "file-path view \(hex(entries)) (\(entryCount) entries), directory-size view \(hex(directories)) (\(directoryCount) dirs)"
    }
}

private func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

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

    /// The digest of both views as of `txn`.
    public func digest(_ txn: Transaction) throws -> ViewDigest {
        let e = try digest(txn, entries), d = try digest(txn, dirs)
        return ViewDigest(entries: e.0, directories: d.0, entryCount: e.1, directoryCount: d.1)
    }

    /// Where two sets of views first differ, as a sentence naming the entry; nil when equal.
    public func firstDifference(_ txn: Transaction, from other: Views) throws -> String? {
        var pairs = [("file-path view", entries, other.entries), ("directory-size view", dirs, other.dirs),
                     ("roots", roots, other.roots)]
        if let a = rejected, let b = other.rejected { pairs.append(("rejections", a, b)) }
        for (name, a, b) in pairs {
            let difference: String? = try txn.withCursor(a) { ca in
                try txn.withCursor(b) { cb in
                    var x = try ca.first(), y = try cb.first()
                    while true {
                        switch (x, y) {
                        case (nil, nil): return nil
                        case let ((k, _)?, nil): return "\(name): \(describe(txn, k, db: a)) is only in the first"
                        case let (nil, (k, _)?): return "\(name): \(describe(txn, k, db: a)) is only in the second"
                        case let ((k1, v1)?, (k2, v2)?):
                            if !k1.elementsEqual(k2) {
                                let first = k1.lexicographicallyPrecedes(k2)
                                return "\(name): \(describe(txn, first ? k1 : k2, db: a)) is only in the \(first ? "first" : "second")"
                            }
                            if !v1.elementsEqual(v2) { return "\(name): \(describe(txn, k1, db: a)) differs" }
                            x = try ca.next(); y = try cb.next()
                        }
                    }
                }
            }
            if let difference { return difference }
        }
        return nil
    }

    /// A key of a view as a path when it can be resolved, else its ids.
    private func describe(_ txn: Transaction, _ key: UnsafeRawBufferPointer, db: Database) -> String {
        if db == entries || db == rejected, key.count >= 8 {
            let parent = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            let name = String(decoding: key[8...], as: UTF8.self)
            if let dir = try? path(txn, of: parent) { return "\"\(String(decoding: dir, as: UTF8.self))/\(name)\"" }
            return "entry \"\(name)\" of directory \(parent)"
        }
        if db == dirs, key.count == 8 {
            let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
            if let p = try? path(txn, of: id) { return "directory \"\(String(decoding: p, as: UTF8.self))\"" }
            return "directory \(id)"
        }
        return "key \(Array(key).prefix(32))"
    }

    /// Empties both views (before a replay into them).
    public func clear(_ txn: Transaction) throws {
        for db in [entries, dirs, roots, state, dirInodes, incomplete] + (rejected.map { [$0] } ?? []) { try txn.clear(db) }
    }
}
