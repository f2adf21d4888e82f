import EventStore
import Events
package import LMDB

#if canImport(Glibc)
    import Glibc
#endif

/// How the file-path view stores a directory's children: one value per directory, under
/// its dir id. Docs/EVENTS.md, "entries".
///
///     tag 1, in the log: varint first_seq | varint last_seq − first_seq | varint count
///         the children are the `count` EntryCreated events of this directory between
///         the two sequences, in name order: a first listing costs the view a few bytes,
///         since the log already holds every name and metadata.
///     tag 3, packed: varint count | count × (bytes name | metadata, delta-coded as in a
///         block of the log, version 3): a listing that changed after it was first
///         written. Tag 2 is the same with version-2 metadata (no blocks, links, owner),
///         read but no longer written.
enum ListingFormat {
    static let inLog: UInt8 = 1
    static let packedWithoutOwnership: UInt8 = 2
    static let packed: UInt8 = 3
    /// A listing stays "in the log" while its events are at most this far apart: a
    /// reader scans from the first to the last.
    static let maxGap: UInt64 = 256
}

/// Byte order of names, the order of a directory's children (memcmp, shorter first).
@inline(__always)
func compareNames(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let n = min(a.count, b.count)
    if n > 0 {
        let c = memcmp(a.baseAddress!, b.baseAddress!, n)
        if c != 0 { return Int(c) }
    }
    return a.count - b.count
}

extension Views {
    /// Calls `body` with each child of the stored listing `value` of `dirID`, in name order.
    func forEachStoredChild(
        _ txn: Transaction, of dirID: UInt64, value: UnsafeRawBufferPointer,
        _ body: (UnsafeRawBufferPointer, EntryMetadata) throws -> Bool
    ) throws {
        var r = ByteReader(buffer: value)
        switch try r.byte() {
        case ListingFormat.inLog:
            let first = try r.varint(), span = try r.varint()
            let count = try r.varint()
            guard count > 0, first <= UInt64.max - span else {
                throw ViewError.corrupt("the listing of directory \(dirID) names an impossible stretch of the log")
            }
            let last = first + span
            var seen: UInt64 = 0
            var stopped = false
            func scan(_ logTxn: Transaction, _ log: Database) throws {
                try EventLog.forEachCreated(logTxn, log: log, from: first, through: last) { parent, name, m in
                    guard parent == dirID else { return true }
                    seen += 1
                    if try !body(name, m) { stopped = true; return false }
                    return seen < count
                }
            }
            if let foreignLog { try foreignLog.read { try scan($0, foreignLog.log) } } else { try scan(txn, log) }
            if !stopped && seen != count {
                throw ViewError.corrupt(
                    "the listing of directory \(dirID) names \(count) entries at sequences \(first)–\(last); the log holds \(seen)")
            }
        case ListingFormat.packed, ListingFormat.packedWithoutOwnership:
            let count = try r.varint()
            var context = BlockContext(version: r.buffer[0] == ListingFormat.packed ? 3 : 2)
            for _ in 0..<count {
                let name = try r.bytesInPlace()
                let m = try r.compactMetadata(&context)
                if try !body(name, m) { return }
            }
        case let tag:
            throw ViewError.corrupt("directory \(dirID) has a listing of unknown form \(tag)")
        }
    }
}

/// The log of another environment, read in a transaction kept for the views' lifetime
/// (scratch views are short-lived: a `diff` or an `export`).
final class ForeignLog: @unchecked Sendable {
    // @unchecked: `reader` is only touched with `lock` held.
    let environment: Environment
    let log: Database
    private var reader: Transaction?
    /// Allocated, not a stored `pthread_mutex_t` passed as `&lock`: Swift promises such a
    /// pointer only for the duration of one call, and a mutex must not move.
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(_ environment: Environment) throws {
        self.environment = environment
        log = try environment.read { try $0.openDatabase("log", create: false) }
        pthread_mutex_init(lock, nil)
    }

    deinit {
        // The transaction ends before the environment it reads can be closed.
        reader = nil
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` in the kept transaction, renewed for it: between reads it holds no
    /// snapshot, so a run writing meanwhile can reuse pages and grow the map.
    func read<R>(_ body: (Transaction) throws -> R) throws -> R {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        let txn: Transaction
        if let reader {
            try reader.renew()
            txn = reader
        } else {
            txn = try environment.makeReader()
            reader = txn
        }
        defer { txn.reset() }
        return try body(txn)
    }
}

/// A directory's children in name order, names end to end: read once, then looked up by
/// name with a binary search (`Views.children`, the fold's listings, the look-ahead).
public struct Children: Sendable {
    var names: [UInt8] = []
    /// `ends[i]` is where name `i` ends in `names`.
    var ends: [Int] = []
    public private(set) var metadata: [EntryMetadata] = []

    public init() {}

    public var count: Int { metadata.count }
    public var isEmpty: Bool { metadata.isEmpty }

    @inline(__always)
    mutating func append(_ name: UnsafeRawBufferPointer, _ m: EntryMetadata) {
        names.append(contentsOf: name)
        ends.append(names.count)
        metadata.append(m)
    }

    mutating func removeAll(keepingCapacity: Bool) {
        names.removeAll(keepingCapacity: keepingCapacity)
        ends.removeAll(keepingCapacity: keepingCapacity)
        metadata.removeAll(keepingCapacity: keepingCapacity)
    }

    @inline(__always)
    func withName<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = i == 0 ? 0 : ends[i - 1]
        return try names.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<ends[i]])) }
    }

    /// Whether `name` sorts after every child (always, when there is none).
    @inline(__always)
    func isPastLast(_ name: UnsafeRawBufferPointer) -> Bool {
        metadata.isEmpty || withName(metadata.count - 1) { compareNames($0, name) < 0 }
    }

    /// The metadata of the child named `name`.
    public func find(_ name: UnsafeRawBufferPointer) -> EntryMetadata? {
        if isPastLast(name) { return nil }
        var low = 0, high = metadata.count - 1
        while low <= high {
            let mid = (low + high) / 2
            let c = withName(mid) { compareNames($0, name) }
            if c == 0 { return metadata[mid] }
            if c < 0 { low = mid + 1 } else { high = mid - 1 }
        }
        return nil
    }

    /// Each child in name order.
    func forEach(_ body: (UnsafeRawBufferPointer, EntryMetadata) throws -> Void) rethrows {
        try names.withUnsafeBytes { all in
            var start = 0
            for i in 0..<metadata.count {
                try body(UnsafeRawBufferPointer(rebasing: all[start..<ends[i]]), metadata[i])
                start = ends[i]
            }
        }
    }
}

extension Views {
    /// The children of directory `dirID`, read once for look-ups by name.
    package func children(_ txn: Transaction, of dirID: UInt64) throws -> Children {
        var children = Children()
        try forEachChild(txn, of: dirID) { name, m in
            children.append(name, m)
            return true
        }
        return children
    }
}

/// A directory's children while a transaction of the fold changes them: the listing as
/// stored (or as appended in this transaction), plus edits not yet merged in.
final class PendingListing {
    /// The stored listing, or the one appended in this transaction. Unchecked: the fold is
    /// single-threaded and never holds two accesses at once; the dynamic checks cost a
    /// tenth of a first index's fold.
    @exclusivity(unchecked) private var base = Children()
    /// Set while the children are exactly the EntryCreated events of the directory from
    /// `first` through `last`, with no edits.
    private(set) var inLog: (first: UInt64, last: UInt64)?
    /// Changes to merge: name → its metadata, nil when removed.
    private var edits: [[UInt8]: EntryMetadata?] = [:]
    /// Children after the edits.
    private(set) var count = 0
    /// Whether the stored value must be rewritten.
    private(set) var changed = false

    init() {}

    /// Empties it for another directory, keeping its buffers (the fold reuses listings:
    /// a first index touches every directory once).
    func reset() {
        base.removeAll(keepingCapacity: true)
        if !edits.isEmpty { edits.removeAll() }
        inLog = nil
        count = 0
        changed = false
    }

    /// Whether its buffers are small enough to keep for reuse.
    var isWorthKeeping: Bool { base.metadata.capacity <= 4096 && base.names.capacity <= 1 << 16 }

    /// Loads the stored listing `stored` of `dirID` into this empty one.
    func load(_ views: Views, _ txn: Transaction, dirID: UInt64, stored: UnsafeRawBufferPointer) throws {
        var r = ByteReader(buffer: stored)
        if try r.byte() == ListingFormat.inLog {
            let first = try r.varint()
            inLog = (first, first &+ (try r.varint()))
        }
        try views.forEachStoredChild(txn, of: dirID, value: stored) { name, m in
            base.append(name, m)
            return true
        }
        count = base.count
    }

    @inline(__always)
    func lookUp(_ name: UnsafeRawBufferPointer) -> EntryMetadata? {
        if !edits.isEmpty, let edit = edits[Array(name)] { return edit }
        return base.find(name)
    }

    /// `EntryCreated` at `sequence` of a name past the last one of a listing that only ever
    /// grew in order: appended, still in the log. False (nothing done) in any other case.
    @inline(__always)
    func appendInOrder(sequence: UInt64, name: UnsafeRawBufferPointer, metadata m: EntryMetadata) -> Bool {
        guard edits.isEmpty, count == base.count else { return false }
        if let inLog {
            guard sequence &- inLog.last <= ListingFormat.maxGap, base.isPastLast(name) else { return false }
            self.inLog = (inLog.first, sequence)
        } else {
            guard base.isEmpty else { return false }
            self.inLog = (sequence, sequence)
        }
        base.append(name, m)
        count += 1
        changed = true
        return true
    }

    /// `EntryCreated` at `sequence` (any previous child of that name already retracted).
    func create(sequence: UInt64, name: UnsafeRawBufferPointer, metadata m: EntryMetadata) {
        if count == 0 && (!base.isEmpty || !edits.isEmpty) {
            // Emptied: it starts over, as it would from no stored listing at all.
            reset()
        }
        if appendInOrder(sequence: sequence, name: name, metadata: m) { return }
        set(name, m)
    }

    /// A child now has `metadata` (updated, moved here, or created out of order).
    func set(_ name: UnsafeRawBufferPointer, _ m: EntryMetadata) {
        if lookUp(name) == nil { count += 1 }
        edits[Array(name)] = .some(m)
        inLog = nil
        changed = true
    }

    func remove(_ name: UnsafeRawBufferPointer) {
        guard lookUp(name) != nil else { return }
        edits[Array(name)] = .some(nil)
        count -= 1
        inLog = nil
        changed = true
    }

    /// Every child goes (its directory left the views).
    func removeAll() {
        base.removeAll(keepingCapacity: false)
        edits.removeAll()
        inLog = nil
        count = 0
        changed = true
    }

    /// Each child after the edits, in name order.
    func forEach(_ body: (UnsafeRawBufferPointer, EntryMetadata) throws -> Void) rethrows {
        guard !edits.isEmpty else { return try base.forEach(body) }
        let edited = edits.keys.sorted { $0.lexicographicallyPrecedes($1) }
        var e = 0
        try base.forEach { name, m in
            while e < edited.count {
                let c = edited[e].withUnsafeBytes { compareNames($0, name) }
                if c > 0 { break }
                if let edit = edits[edited[e]]! { try edited[e].withUnsafeBytes { try body($0, edit) } }
                e += 1
                if c == 0 { return }
            }
            try body(name, m)
        }
        while e < edited.count {
            if let edit = edits[edited[e]]! { try edited[e].withUnsafeBytes { try body($0, edit) } }
            e += 1
        }
    }

    /// The value to store, nil when the directory has no children (its row goes).
    func encoded(into w: inout ByteWriter) -> Bool {
        w.reset()
        guard count > 0 else { return false }
        if let inLog, edits.isEmpty {
            w.byte(ListingFormat.inLog)
            w.varint(inLog.first)
            w.varint(inLog.last &- inLog.first)
            w.varint(UInt64(count))
            return true
        }
        w.byte(ListingFormat.packed)
        w.varint(UInt64(count))
        var context = BlockContext()
        forEach { name, m in
            w.bytes(name)
            w.compactMetadata(m, &context)
        }
        return true
    }
}
