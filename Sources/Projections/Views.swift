import Events
package import LMDB

/// The totals of a directory in the directory-size view.
///
/// Rule: sizes and counts are unsigned 64-bit and change by wrapping arithmetic, a
/// removal's subtraction undoing its addition exactly; stored as the zigzag of their bit
/// pattern (the schema-3 layout). Motivation: two sparse files of 2^63-1 bytes made a
/// signed total negative (`du --json` printed `"size":-2`, the human chart crashed).
/// Totals past 2^64 (more than 16 EiB of apparent size below one directory) wrap.
public struct DirectoryTotals: Sendable, Hashable {
    /// Sum of `st_size` of the regular files below, at any depth.
    public var size: UInt64 = 0
    /// Regular files below, at any depth.
    public var files: UInt64 = 0
    /// Directories below, at any depth (the directory itself not counted).
    public var directories: UInt64 = 0
    /// `st_blocks` × 512 of every entry below (directories and symlinks too), each inode
    /// once: du's count without the directory's own blocks (`DirectoryRecord.ownDiskBytes`).
    public var diskBytes: UInt64 = 0
    /// `st_size` of every entry below, each inode once: `du --apparent-size` without the
    /// directory's own size.
    public var apparentBytes: UInt64 = 0

    public init(size: UInt64 = 0, files: UInt64 = 0, directories: UInt64 = 0, diskBytes: UInt64 = 0, apparentBytes: UInt64 = 0) {
        self.size = size; self.files = files; self.directories = directories
        self.diskBytes = diskBytes; self.apparentBytes = apparentBytes
    }

    public static func += (a: inout DirectoryTotals, b: DirectoryTotals) {
        a.size &+= b.size; a.files &+= b.files; a.directories &+= b.directories
        a.diskBytes &+= b.diskBytes; a.apparentBytes &+= b.apparentBytes
    }
    public static func -= (a: inout DirectoryTotals, b: DirectoryTotals) {
        a.size &-= b.size; a.files &-= b.files; a.directories &-= b.directories
        a.diskBytes &-= b.diskBytes; a.apparentBytes &-= b.apparentBytes
    }
    public var isZero: Bool { size == 0 && files == 0 && directories == 0 && diskBytes == 0 && apparentBytes == 0 }
}

/// A directory's row in the directory-size view: where it sits and what is below it.
public struct DirectoryRecord: Sendable, Hashable {
    /// The id of the directory holding it; 0 for a root.
    public var parent: UInt64
    /// Its name in the parent; for a root, its absolute path.
    public var name: [UInt8]
    public var totals: DirectoryTotals
    /// The directory's own `st_blocks` × 512 and `st_size` (0 when not recorded): du's
    /// figure for it is these plus its totals.
    public var ownDiskBytes: UInt64 = 0
    public var ownApparentBytes: UInt64 = 0

    public init(parent: UInt64, name: [UInt8], totals: DirectoryTotals = DirectoryTotals()) {
        self.parent = parent; self.name = name; self.totals = totals
    }

    /// What `du -sx -B1` prints for the directory.
    public var duDiskBytes: UInt64 { totals.diskBytes &+ ownDiskBytes }
    /// What `du -sx --apparent-size -B1` prints for the directory.
    public var duApparentBytes: UInt64 { totals.apparentBytes &+ ownApparentBytes }

    /// Sets the directory's own sizes from its metadata.
    mutating func setOwn(_ m: EntryMetadata?) {
        let own = m.map(ViewFold.ownSizes) ?? (disk: 0, apparent: 0)
        ownDiskBytes = own.disk
        ownApparentBytes = own.apparent
    }

    /// Schema 3 added the last four fields; a row without them reads them as 0.
    func encoded(into w: inout ByteWriter) {
        w.reset()
        w.varint(parent)
        w.bytes(name)
        w.zigzag(Int64(bitPattern: totals.size))
        w.zigzag(Int64(bitPattern: totals.files))
        w.zigzag(Int64(bitPattern: totals.directories))
        w.zigzag(Int64(bitPattern: totals.diskBytes))
        w.zigzag(Int64(bitPattern: totals.apparentBytes))
        w.zigzag(Int64(bitPattern: ownDiskBytes))
        w.zigzag(Int64(bitPattern: ownApparentBytes))
    }

    init(decoding bytes: UnsafeRawBufferPointer) throws {
        var r = ByteReader(buffer: bytes)
        self.init(
            parent: try r.varint(), name: try r.bytes(),
            totals: DirectoryTotals(size: try r.unsigned(), files: try r.unsigned(), directories: try r.unsigned()))
        if !r.isAtEnd {
            totals.diskBytes = try r.unsigned()
            totals.apparentBytes = try r.unsigned()
            ownDiskBytes = try r.unsigned()
            ownApparentBytes = try r.unsigned()
        }
    }
}

extension ByteReader {
    /// An unsigned value stored as the zigzag of its bit pattern.
    fileprivate mutating func unsigned() throws -> UInt64 { UInt64(bitPattern: try zigzag()) }
}

/// The file-path view and the directory-size view, stored in LMDB next to the log.
///
/// Key layout:
/// - `entries`: dir id (8 bytes big-endian) → the directory's children, in name (byte)
///   order: where they are in the log, or packed (`ListingFormat`)
/// - `dirs`:    dir id (8 bytes big-endian) → `DirectoryRecord` (parent, name, totals)
/// - `roots`:   absolute root path bytes → root dir id (8 bytes big-endian); a root past
///   LMDB's 511-byte key limit is keyed by its first 496 bytes, a NUL (no path holds one)
///   and an FNV-1a hash of the whole, and its value carries the whole path after the id
/// - `dirInodes`: device + inode (8 + 8 bytes big-endian) → dir id, for directories only:
///   how a rescan recognizes a directory that moved
/// - `incomplete`: dir id → empty, for directories whose last listing met an error: a
///   rescan must read them again whatever their mtime says
/// - `rejected`: parent dir id (8 bytes big-endian) + name → the rule that rejected it
///   (`PathRejected`), for names the rules kept out of the index: `evindex why`, and how a
///   rescan knows which rejections are new
/// - `state`:   "lastSequence" → the last sequence folded into the views
/// - `links`: device + inode (8 + 8 bytes big-endian) → the disk and apparent bytes
///   counted for that inode; device + inode + parent dir id + name → empty, for every name
///   of it: the non-directories with more than one link, which du counts once per
///   directory however many of their names are below it (`SharedInodes.swift`)
/// - `dirHistory`: dir id + sequence (8 + 8 bytes big-endian) → the directory's row as
///   it was at that stop of a run; 0 + sequence → the highest dir id then
///   (`SizeHistory.swift`)
/// - `names`: the first dir id of a chunk of 16 (8 bytes big-endian) → the names of
///   those directories' children, folded, for `find` (`NameIndex.swift`)
///
/// A `prefix` gives a second, independent set of views in the same environment (replay
/// builds into one and compares).
public final class Views: Sendable {
    package let environment: Environment
    let entries: Database
    /// The event log, which listings of the file-path view point into.
    let log: Database
    /// For views in another environment than their log (`LearnedIndex`'s scratch views):
    /// where the log is read.
    let foreignLog: ForeignLog?
    let dirs: Database
    let roots: Database
    let state: Database
    let dirInodes: Database
    let incomplete: Database
    /// Nil only for a reader of a database written before rejections were recorded.
    let rejected: Database?
    /// Nil only for a reader of a database written before schema 3.
    let links: Database?
    /// Nil only for a reader of a database written before schema 3.
    let dirHistory: Database?
    /// Nil for views without a name index (scratch views, which `find` walks) and for a
    /// reader of a database written before schema 4.
    let names: Database?

    /// Opens the views; `create` (the writer) creates them, readers never write.
    ///
    /// - Parameter logEnvironment: where the log these views were folded from lives, when
    ///   not in `environment` (scratch views): listings that point into the log are read
    ///   there, in a read transaction the views keep.
    /// - Parameter nameIndex: whether the views have a name index (scratch views, read
    ///   once by path, do without).
    package init(
        environment: Environment, prefix: String = "", create: Bool = true, logEnvironment: Environment? = nil, nameIndex: Bool = true
    ) throws {
        self.environment = environment
        foreignLog = try logEnvironment.map { try ForeignLog($0) }
        let open = { (txn: Transaction) in
            (
                try txn.openDatabase(prefix + "entries", create: create),
                try txn.openDatabase(prefix + "dirs", create: create),
                try txn.openDatabase(prefix + "roots", create: create),
                try txn.openDatabase(prefix + "state", create: create),
                try txn.openDatabase(prefix + "dirInodes", create: create),
                try txn.openDatabase(prefix + "incomplete", create: create)
            )
        }
        (entries, dirs, roots, state, dirInodes, incomplete) = create ? try environment.write(open) : try environment.read(open)
        log =
            create
            ? try environment.write { try $0.openDatabase("log", create: true) }
            : try environment.read { try $0.openDatabase("log", create: false) }
        rejected =
            create
            ? try environment.write { try $0.openDatabase(prefix + "rejected", create: true) }
            : try? environment.read { try $0.openDatabase(prefix + "rejected", create: false) }
        links =
            create
            ? try environment.write { try $0.openDatabase(prefix + "links", create: true) }
            : try? environment.read { try $0.openDatabase(prefix + "links", create: false) }
        dirHistory =
            create
            ? try environment.write { try $0.openDatabase(prefix + "dirHistory", create: true) }
            : try? environment.read { try $0.openDatabase(prefix + "dirHistory", create: false) }
        names =
            !nameIndex
            ? nil
            : create
                ? try environment.write { try $0.openDatabase(prefix + "names", create: true) }
                : try? environment.read { try $0.openDatabase(prefix + "names", create: false) }
    }

    /// The prefix of the views a replay builds (`replay.entries`, `replay.dirs`, …).
    public static let replayPrefix = "replay."

    // MARK: - Keys

    @inline(__always)
    static func withEntryKey<R>(_ parent: UInt64, _ name: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: 8 + name.count, alignment: 8) { key in
            key.storeBytes(of: parent.bigEndian, toByteOffset: 0, as: UInt64.self)
            if name.count > 0 { (key.baseAddress! + 8).copyMemory(from: name.baseAddress!, byteCount: name.count) }
            return try body(UnsafeRawBufferPointer(key))
        }
    }

    /// The `roots` key of `root`: the path itself when LMDB takes it as a key, else its
    /// first bytes, a NUL and a hash of the whole (the value then carries the path).
    static func rootKey(_ root: [UInt8]) -> [UInt8] {
        guard root.count > 511 else { return root }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in root { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Array(root[..<496]) + [0] + withUnsafeBytes(of: hash.bigEndian, Array.init)
    }

    /// The `roots` value of `root` with dir id `id`.
    static func rootValue(_ root: [UInt8], _ id: UInt64) -> [UInt8] {
        withUnsafeBytes(of: id.bigEndian, Array.init) + (root.count > 511 ? root : [])
    }

    @inline(__always)
    static func withIDKey<R>(_ id: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var key = id.bigEndian
        return try withUnsafeBytes(of: &key, body)
    }

    @inline(__always)
    static func withInodeKey<R>(device: UInt64, inode: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var key = (device.bigEndian, inode.bigEndian)
        return try withUnsafeBytes(of: &key, body)
    }

    // MARK: - Reads

    /// Whether any directory's last listing met an error.
    package func hasIncompleteListings(_ txn: Transaction) throws -> Bool { try txn.count(incomplete) > 0 }

    /// Whether directory `dirID`'s last listing met an error.
    package func isListingIncomplete(_ txn: Transaction, _ dirID: UInt64) throws -> Bool {
        try Self.withIDKey(dirID) { k in try txn.get(incomplete, key: k) { _ in true } } ?? false
    }

    /// The directories whose last listing met an error, in id order.
    package func incompleteListings(_ txn: Transaction) throws -> [UInt64] {
        try txn.withCursor(incomplete) { cursor in
            var ids: [UInt64] = []
            var row = try cursor.first()
            while let (key, _) = row {
                ids.append(UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)))
                row = try cursor.next()
            }
            return ids
        }
    }

    /// Whether any name is recorded as rejected.
    package func hasRejections(_ txn: Transaction) throws -> Bool {
        guard let rejected else { return false }
        return try txn.count(rejected) > 0
    }

    /// The rule that rejected `name` in directory `parent`, if it is recorded as rejected.
    package func rejection(_ txn: Transaction, parent: UInt64, name: [UInt8]) throws -> [UInt8]? {
        guard let rejected else { return nil }
        return try name.withUnsafeBytes { n in
            try Self.withEntryKey(parent, n) { key in try txn.get(rejected, key: key) { Array($0) } }
        }
    }

    /// Calls `body` with each rejected name of directory `dirID` and its rule, in name order.
    package func forEachRejection(
        _ txn: Transaction, of dirID: UInt64,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard let rejected else { return }
        try txn.withCursor(rejected) { cursor in
            var record = try Self.withIDKey(dirID) { try cursor.seek(atLeast: $0) }
            let prefix = dirID.bigEndian
            while let (key, value) = record, key.count >= 8, key.loadUnaligned(as: UInt64.self) == prefix {
                try body(UnsafeRawBufferPointer(rebasing: key[8...]), value)
                record = try cursor.next()
            }
        }
    }

    /// Calls `body` with every rejected name: its directory's id, the name and the rule.
    package func forEachRejection(_ txn: Transaction, _ body: (UInt64, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
        guard let rejected else { return }
        try txn.withCursor(rejected) { cursor in
            var record = try cursor.first()
            while let (key, value) = record, key.count >= 8 {
                try body(UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)), UnsafeRawBufferPointer(rebasing: key[8...]), value)
                record = try cursor.next()
            }
        }
    }

    /// The id of the indexed directory with this device and inode.
    package func directoryID(_ txn: Transaction, device: UInt64, inode: UInt64) throws -> UInt64? {
        try Self.withInodeKey(device: device, inode: inode) { k in
            try txn.get(dirInodes, key: k) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
        }
    }

    /// The last sequence folded into these views (0 when empty).
    package func lastSequence(_ txn: Transaction) throws -> UInt64 {
        try Array("lastSequence".utf8).withUnsafeBytes { k in
            try txn.get(state, key: k) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) } ?? 0
        }
    }

    func setLastSequence(_ txn: Transaction, _ seq: UInt64) throws {
        var v = seq.bigEndian
        try Array("lastSequence".utf8).withUnsafeBytes { k in
            try withUnsafeBytes(of: &v) { try txn.put(state, key: k, value: $0) }
        }
    }

    /// The metadata of `name` in directory `parent`.
    package func entry(_ txn: Transaction, parent: UInt64, name: UnsafeRawBufferPointer) throws -> EntryMetadata? {
        var found: EntryMetadata?
        try forEachChild(txn, of: parent) { child, m in
            let c = compareNames(child, name)
            if c == 0 { found = m }
            return c < 0
        }
        return found
    }

    package func entry(_ txn: Transaction, parent: UInt64, name: [UInt8]) throws -> EntryMetadata? {
        try name.withUnsafeBytes { try entry(txn, parent: parent, name: $0) }
    }

    /// Calls `body` with each child of directory `dirID`, in name order, until it returns
    /// false. Names are valid only inside `body`.
    package func forEachChild(
        _ txn: Transaction, of dirID: UInt64,
        _ body: (UnsafeRawBufferPointer, EntryMetadata) throws -> Bool
    ) throws {
        try Self.withIDKey(dirID) { key in
            _ = try txn.get(entries, key: key) { value in try forEachStoredChild(txn, of: dirID, value: value, body) }
        }
    }

    /// Calls `body` with the id of each directory that has children in the file-path view, in id order.
    func forEachListing(_ txn: Transaction, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
        try txn.withCursor(entries) { cursor in
            var row = try cursor.first()
            while let (key, value) = row, key.count == 8 {
                try body(UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)), value)
                row = try cursor.next()
            }
        }
    }

    /// Calls `body` with every directory's id and parent id, in id order.
    package func forEachDirectory(_ txn: Transaction, _ body: (UInt64, UInt64) throws -> Void) throws {
        try txn.withCursor(dirs) { cursor in
            var row = try cursor.first()
            while let (key, value) = row {
                var r = ByteReader(buffer: value)
                try body(UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)), try r.varint())
                row = try cursor.next()
            }
        }
    }

    /// Calls `body` with every directory's id and row, in id order.
    package func forEachDirectoryRecord(_ txn: Transaction, _ body: (UInt64, DirectoryRecord) throws -> Void) throws {
        try txn.withCursor(dirs) { cursor in
            var row = try cursor.first()
            while let (key, value) = row {
                try body(UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)), try DirectoryRecord(decoding: value))
                row = try cursor.next()
            }
        }
    }

    /// The directory-size row of `dirID`.
    package func directory(_ txn: Transaction, _ dirID: UInt64) throws -> DirectoryRecord? {
        try Self.withIDKey(dirID) { k in try txn.get(dirs, key: k) { try DirectoryRecord(decoding: $0) } }
    }

    /// Every indexed root: absolute path bytes and dir id, in path order.
    package func roots(_ txn: Transaction) throws -> [(path: [UInt8], dirID: UInt64)] {
        try txn.withCursor(roots) { cursor in
            var result: [(path: [UInt8], dirID: UInt64)] = []
            var row = try cursor.first()
            while let (key, value) = row {
                let path = value.count > 8 ? Array(value[8...]) : Array(key)
                result.append((path, UInt64(bigEndian: value.loadUnaligned(as: UInt64.self))))
                row = try cursor.next()
            }
            // A long root's key is not its path: the order is the paths'.
            result.sort { $0.path.lexicographicallyPrecedes($1.path) }
            return result
        }
    }

    /// The absolute path of directory `dirID`, rebuilt from the parent chain.
    package func path(_ txn: Transaction, of dirID: UInt64) throws -> [UInt8]? {
        var components: [[UInt8]] = []
        var id = dirID
        while id != 0 {
            guard let record = try directory(txn, id) else { return nil }
            components.append(record.name)
            id = record.parent
            if components.count > 100_000 { throw ViewError.corrupt("directory \(dirID) has a parent cycle") }
        }
        var path: [UInt8] = []
        for (i, c) in components.reversed().enumerated() {
            if i > 0 && path.last != UInt8(ascii: "/") { path.append(UInt8(ascii: "/")) }
            path.append(contentsOf: c)
        }
        return path
    }

    /// Where an absolute path is in the index.
    public enum Location: Sendable, Equatable {
        /// An indexed root, or a directory inside one.
        case directory(dirID: UInt64, metadata: EntryMetadata?)
        /// A non-directory entry inside a root.
        case entry(parent: UInt64, name: [UInt8], metadata: EntryMetadata)
    }

    /// The longest indexed root that is `path` (absolute, normalized) or a directory above it.
    package func root(containing path: [UInt8], _ txn: Transaction) throws -> (path: [UInt8], dirID: UInt64)? {
        var best: (path: [UInt8], dirID: UInt64)?
        for root in try roots(txn) where PathBytes.isSameOrBelow(path, root.path) && root.path.count > (best?.path.count ?? -1) {
            best = root
        }
        return best
    }

    /// Finds `path` (absolute, normalized, without a trailing slash) in the index.
    package func locate(_ txn: Transaction, path: [UInt8]) throws -> Location? {
        let slash = UInt8(ascii: "/")
        guard let root = try root(containing: path, txn) else { return nil }
        var location = Location.directory(dirID: root.dirID, metadata: nil)
        let rest = path[root.path.count...].split(separator: slash, omittingEmptySubsequences: true)
        for component in rest {
            guard case let .directory(dirID, _) = location else { return nil }
            let name = Array(component)
            guard let m = try entry(txn, parent: dirID, name: name) else { return nil }
            location =
                m.kind == .directory && m.dirID != 0
                ? .directory(dirID: m.dirID, metadata: m) : .entry(parent: dirID, name: name, metadata: m)
        }
        return location
    }

}

/// A view that contradicts itself (a parent cycle, a missing row).
public enum ViewError: Error, CustomStringConvertible {
    case corrupt(String)
    /// `--replayed` asked for views no replay has built.
    case noReplayedViews(directory: String)
    public var description: String {
        switch self {
        case let .corrupt(s): "the index is inconsistent: \(s); run `evindex replay --verify`"
        case let .noReplayedViews(directory): "no replayed views in \(directory): run `evindex replay --to SEQ` first"
        }
    }
}
