import Events
package import LMDB

#if canImport(Glibc)
    import Glibc
#endif

/// The name index: every name of the file-path view, ASCII letters folded to lower case,
/// grouped by the directory that holds it, for `find` to scan names without the metadata
/// around them.
///
/// Rule: directories are grouped by id, `span` consecutive ids to a chunk, stored under
/// the chunk's first id (id with its low bits cleared, 8 bytes big-endian):
///
///     varint header bytes | header: count × (u8 id − first id | varint bytes of its
///     names) | the names: each directory's children in listing (byte) order, each
///     folded and followed by NUL
///
/// A directory without children has no part in it; a chunk without directories is
/// absent. The bytes of a chunk depend only on the listings it covers, never on the order
/// they were written in, so a replay from scratch writes the same chunks as the runs did
/// (`replay --verify` compares them byte for byte) and `verify` can rebuild and compare them.
/// Motivation: a name query over a million entries reads 14 bytes per entry in about
/// 10,000 values, `memmem` over each chunk's names, instead of decoding a million
/// listings' metadata; names are NUL-free and slash-free, so a match never spans two.
/// plocate's trigram posting lists answer a selective query without reading every name,
/// but they cost more bytes than the names themselves and are hard to keep current one
/// directory at a time; a chunked table is rewritten where a listing changes.
public enum NameIndexFormat {
    /// Directory ids to a chunk: about 1.5 KB of names on a typical tree, so most chunks
    /// fit in a leaf page and one changed directory rewrites little.
    public static let span: UInt64 = 16
    static let mask: UInt64 = span - 1

    /// `b` with an ASCII capital folded to lower case.
    @inline(__always)
    public static func fold(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }
}

/// One chunk of the name index, read in place: valid only inside the read that gave it.
public struct NameChunk {
    /// The first directory id of the chunk.
    public let firstID: UInt64
    /// Every name of the chunk: folded, each followed by NUL, directory after directory.
    public let names: UnsafeRawBufferPointer
    private let header: UnsafeRawBufferPointer

    /// Reads the chunk's bounds only: a search reads the header of a chunk where a name matched.
    init(firstID: UInt64, value: UnsafeRawBufferPointer) throws {
        self.firstID = firstID
        var r = ByteReader(buffer: value)
        let headerBytes = try r.varint()
        guard headerBytes <= UInt64(value.count - r.offset) else {
            throw ViewError.corrupt("name-index chunk \(firstID) has a header longer than itself")
        }
        let namesStart = r.offset + Int(headerBytes)
        // Every name ends in NUL: a reader looking for a name's end never reads past the chunk.
        guard namesStart == value.count || value[value.count - 1] == 0 else {
            throw ViewError.corrupt("name-index chunk \(firstID) does not end a name")
        }
        header = UnsafeRawBufferPointer(rebasing: value[r.offset..<namesStart])
        names = UnsafeRawBufferPointer(rebasing: value[namesStart...])
    }

    /// Calls `body` with each directory of the chunk, in id order: its id and where its
    /// names are in `names`.
    /// - Throws: `ViewError.corrupt` when the header does not fit the chunk.
    public func forEachDirectory(_ body: (UInt64, Range<Int>) throws -> Void) throws {
        var r = ByteReader(buffer: header)
        var start = 0
        var previous: Int = -1
        while !r.isAtEnd {
            let offset = Int(try r.byte()), length = Int(clamping: try r.varint())
            guard offset > previous, offset < NameIndexFormat.span, length <= names.count - start else {
                throw ViewError.corrupt("name-index chunk \(firstID) has a header that does not fit its names")
            }
            try body(firstID + UInt64(offset), start..<start + length)
            start += length
            previous = offset
        }
        guard start == names.count else { throw ViewError.corrupt("name-index chunk \(firstID) has names its header does not place") }
    }
}

extension Views {
    @inline(__always)
    static func nameChunkID(_ dirID: UInt64) -> UInt64 { dirID & ~NameIndexFormat.mask }

    /// Calls `body` with each chunk of the name index, in id order, until it returns false.
    package func forEachNameChunk(_ txn: Transaction, _ body: (NameChunk) throws -> Bool) throws {
        guard let names else { return }
        try txn.withCursor(names) { cursor in
            var row = try cursor.first()
            while let (key, value) = row, key.count == 8 {
                if try !body(NameChunk(firstID: UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)), value: value)) { return }
                row = try cursor.next()
            }
        }
    }

    /// The chunks the listings imply, by first id: what the name index must hold.
    func expectedNameChunks(_ txn: Transaction) throws -> [UInt64: [UInt8]] {
        var builder = NameChunkBuilder()
        var result: [UInt64: [UInt8]] = [:]
        var folded: [UInt8] = []
        var current: UInt64?
        var w = ByteWriter(capacity: 4096)
        func finish() {
            guard let id = current, builder.encoded(into: &w) else { return }
            result[id] = Array(w.bytes)
        }
        try forEachListing(txn) { dirID, value in
            let chunk = Self.nameChunkID(dirID)
            if chunk != current {
                finish()
                builder.reset()
                current = chunk
            }
            folded.removeAll(keepingCapacity: true)
            try forEachStoredChild(txn, of: dirID, value: value) { name, _ in
                NameChunkBuilder.appendFolded(name, to: &folded)
                return true
            }
            builder.set(dirID, folded)
        }
        finish()
        return result
    }

    /// The first chunk of the name index that is not what the listings imply, in words.
    func nameIndexInconsistency(_ txn: Transaction) throws -> String? {
        guard let names else { return nil }
        var expected = try expectedNameChunks(txn)
        var problem: String?
        try txn.withCursor(names) { cursor in
            var row = try cursor.first()
            while let (key, value) = row {
                let id = key.count == 8 ? UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)) : 0
                guard let wanted = expected.removeValue(forKey: id) else {
                    problem = "the name index holds names of directories \(id)–\(id + NameIndexFormat.mask), which have no listings"
                    return
                }
                if !wanted.elementsEqual(value) {
                    problem = "the name index's names of directories \(id)–\(id + NameIndexFormat.mask) differ from their listings"
                    return
                }
                row = try cursor.next()
            }
        }
        if let problem { return problem }
        if let missing = expected.keys.min() {
            return "the name index lacks the names of directories \(missing)–\(missing + NameIndexFormat.mask)"
        }
        return nil
    }
}

/// A chunk of the name index being put together: each directory's folded names by its
/// offset in the chunk.
struct NameChunkBuilder {
    private var parts: [[UInt8]?] = Array(repeating: nil, count: Int(NameIndexFormat.span))

    mutating func reset() {
        for i in parts.indices where parts[i] != nil { parts[i] = nil }
    }

    /// Loads the stored chunk `value`.
    mutating func load(_ chunk: NameChunk) throws {
        try chunk.forEachDirectory { id, range in
            parts[Int(id & NameIndexFormat.mask)] = Array(chunk.names[range])
        }
    }

    /// Directory `dirID`'s names (folded, each followed by NUL); empty: it has none.
    mutating func set(_ dirID: UInt64, _ folded: [UInt8]) {
        parts[Int(dirID & NameIndexFormat.mask)] = folded.isEmpty ? nil : folded
    }

    /// The chunk's value; false when no directory of it has names.
    func encoded(into w: inout ByteWriter) -> Bool {
        w.reset()
        var headerBytes = 0
        for part in parts { if let part { headerBytes += 1 + ByteWriter.varintSize(UInt64(part.count)) } }
        guard headerBytes > 0 else { return false }
        w.varint(UInt64(headerBytes))
        for (offset, part) in parts.enumerated() {
            guard let part else { continue }
            w.byte(UInt8(offset))
            w.varint(UInt64(part.count))
        }
        for part in parts { if let part { part.withUnsafeBytes { w.raw($0) } } }
        return true
    }

    @inline(__always)
    static func appendFolded(_ name: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        for b in name { out.append(NameIndexFormat.fold(b)) }
        out.append(0)
    }
}
