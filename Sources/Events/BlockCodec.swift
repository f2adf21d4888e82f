/// Schema version 2 of the log: one LMDB value holds a block of consecutive events.
/// Layout in Docs/EVENTS.md:
///
///     key:   sequence of the block's first event, 8 bytes big-endian
///     value: u8 2 | varint run | varint time_ms | event… | u32le count | u32le crc32c
///     event: u8 type | payload (as version 1, but dir ids and metadata delta-coded)
///
/// A version-1 record costs about 83 bytes on its page, 27 of them key, node, header and
/// checksum, and three 9-byte times. In a block those are paid once, and each metadata is
/// written as the difference from the one before it (entries of one directory were made
/// close together: nearby inodes, nearby times), which brings an entry to about a third.
///
/// Version 3 adds to each metadata what du and `--owner` need (blocks, links, owner,
/// group) in one byte for the common entry; version-2 blocks are still read, their
/// metadata without those fields (`EntryMetadata.hasOwnership` false).
public enum BlockFormat {
    /// The version this build writes.
    public static let version: UInt8 = 3
    /// The first version of blocks; every version from it to `version` is read.
    public static let firstVersion: UInt8 = 2
    /// Count and checksum.
    public static let trailerSize = 8

    /// Whether a stored value is a block of a version this build reads.
    @inline(__always)
    public static func isBlock(_ value: UnsafeRawBufferPointer) -> Bool {
        value.count > 0 && value[0] >= firstVersion && value[0] <= version
    }

    /// The number of events in a stored block (from its trailer), nil when too short.
    public static func count(_ value: UnsafeRawBufferPointer) -> UInt32? {
        guard value.count >= 1 + trailerSize, isBlock(value) else { return nil }
        return value.loadUnaligned(fromByteOffset: value.count - trailerSize, as: UInt32.self).littleEndian
    }
}

/// What the codec of a block remembers from the events before: dir ids and metadata are
/// written as differences from it.
public struct BlockContext {
    var previous = EntryMetadata(kind: .file, mode: 0, inode: 0, device: 0, size: 0, mtimeNs: 0, ctimeNs: 0)
    var previousDirID: UInt64 = 0
    var previousParent: UInt64 = 0
    /// Whether metadata carries the ownership byte (version 3 and later).
    let hasOwnership: Bool

    /// - Parameter version: the block's (or listing's) format version.
    public init(version: UInt8 = BlockFormat.version) { hasOwnership = version >= 3 }
}

/// The blocks du would expect of an entry of this size: whole 4 KiB blocks for files and
/// directories, none for symlinks and others. Blocks are written as the difference from
/// it (or from the entry before), which is nothing for most entries.
@inline(__always)
func expectedBlocks(_ kind: EntryKind, _ size: UInt64) -> UInt64 {
    kind == .file || kind == .directory ? ((size &+ 4095) >> 12) &<< 3 : 0
}

@inline(__always)
private func magnitude(_ v: Int64) -> UInt64 { v.magnitude }

/// Schema 2 writes dir ids and metadata as differences from the ones before in the block.
extension BlockContext: FieldCoding {
    @inline(__always)
    mutating func write(parent: UInt64, to w: inout ByteWriter) { w.parent(parent, &self) }
    @inline(__always)
    mutating func write(_ m: EntryMetadata, to w: inout ByteWriter) { w.compactMetadata(m, &self) }
    @inline(__always)
    mutating func readParent(_ r: inout ByteReader) throws(DecodeError) -> UInt64 { try r.parent(&self) }
    @inline(__always)
    mutating func readMetadata(_ r: inout ByteReader) throws(DecodeError) -> EntryMetadata { try r.compactMetadata(&self) }
    var carriesRootMetadata: Bool { hasOwnership }
}

extension ByteWriter {
    /// A dir id field (a parent, a listed directory), as the difference from the last one.
    @inline(__always)
    mutating func parent(_ id: UInt64, _ c: inout BlockContext) {
        zigzag(Int64(bitPattern: id &- c.previousParent))
        c.previousParent = id
    }

    /// Entry metadata relative to the metadata before it in the block.
    ///
    ///     u8 flags: bits 0-2 kind, 3 mode follows, 4 device follows, 5 mtime in whole
    ///               seconds, 6 ctime from own mtime (else from the previous ctime),
    ///               7 btime from own ctime (else from the previous btime)
    ///     [varint mode] [varint device] zigzag Δinode | varint size | zigzag Δmtime
    ///     | zigzag Δctime | zigzag Δbtime | [zigzag Δdir_id, directories only]
    ///     | version 3: u8 ownership: bits 0-3 nlink (15: a varint nlink follows), 4 blocks
    ///               are relative to the previous metadata's blocks (else to
    ///               `expectedBlocks`), 5 uid follows, 6 gid follows (else the previous
    ///               ones), 7 a zigzag of blocks minus that reference follows (else none:
    ///               they are equal)
    ///       [varint nlink] [varint uid] [varint gid] [zigzag Δblocks]
    @inline(__always)
    public mutating func compactMetadata(_ m: EntryMetadata, _ c: inout BlockContext) {
        let p = c.previous
        var flags = m.kind.rawValue
        if m.mode != p.mode { flags |= 0x08 }
        if m.device != p.device { flags |= 0x10 }
        let dm = m.mtimeNs &- p.mtimeNs
        let seconds = dm / 1_000_000_000
        let wholeSeconds = seconds &* 1_000_000_000 == dm
        if wholeSeconds { flags |= 0x20 }
        let cOwn = m.ctimeNs &- m.mtimeNs, cPrevious = m.ctimeNs &- p.ctimeNs
        let cFromOwn = magnitude(cOwn) < magnitude(cPrevious)
        if cFromOwn { flags |= 0x40 }
        let bOwn = m.btimeNs &- m.ctimeNs, bPrevious = m.btimeNs &- p.btimeNs
        let bFromOwn = magnitude(bOwn) < magnitude(bPrevious)
        if bFromOwn { flags |= 0x80 }
        // At most two flags bytes and twelve varints of 10 bytes: one capacity check, then
        // plain stores through a local cursor.
        reserve(122)
        var out = base + count
        out.storeBytes(of: flags, as: UInt8.self)
        out += 1
        if m.mode != p.mode { Self.varint(UInt64(m.mode), at: &out) }
        if m.device != p.device { Self.varint(m.device, at: &out) }
        Self.zigzag(Int64(bitPattern: m.inode &- p.inode), at: &out)
        Self.varint(m.size, at: &out)
        Self.zigzag(wholeSeconds ? seconds : dm, at: &out)
        Self.zigzag(cFromOwn ? cOwn : cPrevious, at: &out)
        Self.zigzag(bFromOwn ? bOwn : bPrevious, at: &out)
        if m.kind == .directory {
            Self.zigzag(Int64(bitPattern: m.dirID &- c.previousDirID), at: &out)
            c.previousDirID = m.dirID
        }
        if c.hasOwnership {
            // Most files hold whole blocks of their size; a tree of sparse files (or of
            // inline data) repeats the previous entry's: either costs no byte.
            let expected = expectedBlocks(m.kind, m.size)
            var ownership: UInt8 = m.nlink < 15 ? UInt8(truncatingIfNeeded: m.nlink) : 15
            var blocksDelta: Int64 = 0
            if m.blocks != expected {
                ownership |= 0x10
                if m.blocks != p.blocks {
                    let fromExpected = Int64(bitPattern: m.blocks &- expected), fromPrevious = Int64(bitPattern: m.blocks &- p.blocks)
                    ownership |= 0x80
                    if magnitude(fromExpected) <= magnitude(fromPrevious) {
                        ownership &= ~0x10
                        blocksDelta = fromExpected
                    } else {
                        blocksDelta = fromPrevious
                    }
                }
            }
            if m.uid != p.uid { ownership |= 0x20 }
            if m.gid != p.gid { ownership |= 0x40 }
            out.storeBytes(of: ownership, as: UInt8.self)
            out += 1
            if m.nlink >= 15 { Self.varint(UInt64(m.nlink), at: &out) }
            if m.uid != p.uid { Self.varint(UInt64(m.uid), at: &out) }
            if m.gid != p.gid { Self.varint(UInt64(m.gid), at: &out) }
            if ownership & 0x80 != 0 { Self.zigzag(blocksDelta, at: &out) }
        }
        count = out - base
        c.previous = m
    }

    @inline(__always)
    private static func varint(_ value: UInt64, at out: inout UnsafeMutableRawPointer) {
        var v = value
        while v >= 0x80 {
            out.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, as: UInt8.self)
            out += 1
            v >>= 7
        }
        out.storeBytes(of: UInt8(v), as: UInt8.self)
        out += 1
    }

    @inline(__always)
    private static func zigzag(_ value: Int64, at out: inout UnsafeMutableRawPointer) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)), at: &out)
    }
}

extension ByteReader {
    @inline(__always)
    mutating func parent(_ c: inout BlockContext) throws(DecodeError) -> UInt64 {
        let id = c.previousParent &+ UInt64(bitPattern: try zigzag())
        c.previousParent = id
        return id
    }

    /// Reads what `ByteWriter.compactMetadata` wrote. Arithmetic wraps: damaged bytes
    /// give wrong values (the checksum catches them first), never a trap.
    @inline(__always)
    public mutating func compactMetadata(_ c: inout BlockContext) throws(DecodeError) -> EntryMetadata {
        let p = c.previous
        let flags = try byte()
        guard let kind = EntryKind(rawValue: flags & 0x07) else { throw DecodeError(sequence: sequence, reason: .invalidValue("kind")) }
        var m = p
        m.kind = kind
        m.dirID = 0
        if flags & 0x08 != 0 { m.mode = try uint32() }
        if flags & 0x10 != 0 { m.device = try varint() }
        m.inode = p.inode &+ UInt64(bitPattern: try zigzag())
        m.size = try varint()
        let dm = try zigzag()
        m.mtimeNs = p.mtimeNs &+ (flags & 0x20 != 0 ? dm &* 1_000_000_000 : dm)
        let dc = try zigzag()
        m.ctimeNs = (flags & 0x40 != 0 ? m.mtimeNs : p.ctimeNs) &+ dc
        let db = try zigzag()
        m.btimeNs = (flags & 0x80 != 0 ? m.ctimeNs : p.btimeNs) &+ db
        if kind == .directory {
            m.dirID = c.previousDirID &+ UInt64(bitPattern: try zigzag())
            c.previousDirID = m.dirID
        }
        if c.hasOwnership {
            let ownership = try byte()
            m.nlink = ownership & 0x0F == 15 ? try uint32() : UInt32(ownership & 0x0F)
            if ownership & 0x20 != 0 { m.uid = try uint32() }
            if ownership & 0x40 != 0 { m.gid = try uint32() }
            let reference = ownership & 0x10 != 0 ? p.blocks : expectedBlocks(kind, m.size)
            m.blocks = reference &+ (ownership & 0x80 != 0 ? UInt64(bitPattern: try zigzag()) : 0)
        }
        c.previous = m
        return m
    }

    /// Reads past a compact metadata without computing its fields (the context is left
    /// behind: only for a reader that builds no later metadata of the block).
    mutating func skipCompactMetadata(_ c: BlockContext) throws(DecodeError) {
        let flags = try byte()
        guard let kind = EntryKind(rawValue: flags & 0x07) else { throw DecodeError(sequence: sequence, reason: .invalidValue("kind")) }
        var fields = 5 + (flags & 0x08 != 0 ? 1 : 0) + (flags & 0x10 != 0 ? 1 : 0) + (kind == .directory ? 1 : 0)
        while fields > 0 {
            while try byte() & 0x80 != 0 {}
            fields -= 1
        }
        guard c.hasOwnership else { return }
        let ownership = try byte()
        fields =
            (ownership & 0x0F == 15 ? 1 : 0) + (ownership & 0x20 != 0 ? 1 : 0) + (ownership & 0x40 != 0 ? 1 : 0) + (ownership & 0x80 != 0 ? 1 : 0)
        while fields > 0 {
            while try byte() & 0x80 != 0 {}
            fields -= 1
        }
    }

    /// A `bytes` field without copying it.
    @inline(__always)
    public mutating func bytesInPlace() throws(DecodeError) -> UnsafeRawBufferPointer {
        let n = try varint()
        guard n <= UInt64(buffer.count - offset) else { throw DecodeError(sequence: sequence, reason: .truncated) }
        defer { offset += Int(n) }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + Int(n)])
    }
}

/// Builds one block in a reused buffer. All events of a block share their run and time.
public struct BlockEncoder: ~Copyable {
    var writer = ByteWriter(capacity: 1 << 16)
    var context = BlockContext()
    public private(set) var firstSequence: UInt64 = 0
    public private(set) var count: UInt32 = 0
    public private(set) var run: UInt32 = 0
    public private(set) var timeMs: Int64 = 0
    /// The version written: this build's, or an older one for tests of what older builds wrote.
    let version: UInt8

    public init(version: UInt8 = BlockFormat.version) {
        precondition(version >= BlockFormat.firstVersion && version <= BlockFormat.version)
        self.version = version
    }

    public var isEmpty: Bool { count == 0 }
    /// Bytes so far, without the trailer.
    public var byteCount: Int { writer.count }

    /// Whether an event with this envelope may join the open block (else the block must
    /// be stored first).
    @inline(__always)
    public func accepts(sequence: UInt64, run: UInt32, timeMs: Int64) -> Bool {
        count == 0 || (sequence == firstSequence &+ UInt64(count) && run == self.run && timeMs == self.timeMs)
    }

    @inline(__always)
    mutating func begin(_ sequence: UInt64, _ run: UInt32, _ timeMs: Int64) {
        guard count == 0 else { return }
        writer.reset()
        context = BlockContext(version: version)
        firstSequence = sequence
        self.run = run
        self.timeMs = timeMs
        writer.byte(version)
        writer.varint(UInt64(run))
        writer.varint(UInt64(bitPattern: timeMs))
    }

    /// The hot path: an `EntryCreated` whose name lives in a batch buffer.
    /// - Precondition: `accepts(sequence:run:timeMs:)`.
    @inline(__always)
    public mutating func addEntryCreated(
        sequence: UInt64, run: UInt32, timeMs: Int64,
        parent: UInt64, name: UnsafeRawBufferPointer, metadata m: EntryMetadata
    ) {
        begin(sequence, run, timeMs)
        writer.byte(EventType.entryCreated.rawValue)
        writer.parent(parent, &context)
        writer.bytes(name)
        writer.compactMetadata(m, &context)
        count += 1
    }

    /// Adds any event. - Precondition: `accepts(sequence:run:timeMs:)`.
    public mutating func add(_ record: EventRecord) {
        begin(record.sequence, record.run, record.timeMs)
        writer.byte(record.event.type.rawValue)
        writer.payload(record.event, &context)
        count += 1
    }

    /// Ends the block: appends the count and the checksum, and calls `body` with the key's
    /// sequence and the value; the encoder is empty afterwards.
    public mutating func finish<R>(_ body: (UInt64, UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard count > 0 else { return nil }
        writer.uint32LE(count)
        var key = RecordFormat.key(firstSequence)
        let crc = withUnsafeBytes(of: &key) { k in CRC32C.update(CRC32C.update(0, k), writer.bytes) }
        writer.uint32LE(crc)
        defer { discard() }
        return try body(firstSequence, writer.bytes)
    }

    /// Forgets the open block (its transaction aborted).
    public mutating func discard() {
        count = 0
        writer.reset()
    }

    /// One block of `records` (consecutive, same run and time) as a fresh array: tests.
    public static func encoded(_ records: [EventRecord], version: UInt8 = BlockFormat.version) -> [UInt8] {
        var e = BlockEncoder(version: version)
        for r in records { e.add(r) }
        return e.finish { _, v in Array(v) } ?? []
    }
}

/// One event read from a block, its names still in the block's bytes: the readers that
/// scan many entries (the views, diffs) take `created` without a copy.
public enum LogItem {
    case created(parent: UInt64, name: UnsafeRawBufferPointer, metadata: EntryMetadata)
    case other(Event)
    /// An event whose type the reader did not ask to be built: only its type is known.
    case unbuilt(EventType)
}

/// Reads a stored block's events in order, after checking its checksum and version.
public struct BlockReader {
    var reader: ByteReader
    var context = BlockContext()
    public let firstSequence: UInt64
    public let count: UInt32
    public let run: UInt32
    public let timeMs: Int64
    var index: UInt32 = 0

    /// - Throws: `DecodeError` naming the block's first sequence.
    public init(firstSequence: UInt64, value: UnsafeRawBufferPointer) throws(DecodeError) {
        try RecordDecoder.verify(sequence: firstSequence, value: value)
        guard BlockFormat.isBlock(value), let count = BlockFormat.count(value), count > 0 else {
            throw DecodeError(sequence: firstSequence, reason: .invalidValue("block"))
        }
        context = BlockContext(version: value[0])
        self.firstSequence = firstSequence
        self.count = count
        reader = ByteReader(
            buffer: UnsafeRawBufferPointer(rebasing: value[0..<value.count - BlockFormat.trailerSize]),
            sequence: firstSequence)
        _ = try reader.byte()
        run = try reader.uint32()
        timeMs = Int64(bitPattern: try reader.varint())
    }

    /// The sequence of the event `next()` returns.
    public var sequence: UInt64 { firstSequence &+ UInt64(index) }

    /// The next event, nil after the last.
    public mutating func next() throws(DecodeError) -> LogItem? { try next(building: .max) }

    /// The type of the next event (counted as read), nil after the last.
    @inline(__always)
    private mutating func nextType() throws(DecodeError) -> EventType? {
        guard index < count else {
            guard reader.isAtEnd else { throw DecodeError(sequence: firstSequence, reason: .invalidValue("block length")) }
            return nil
        }
        let typeByte = try reader.byte()
        guard let type = EventType(rawValue: typeByte) else {
            throw DecodeError(sequence: sequence, reason: .unknownType(typeByte))
        }
        index += 1
        return type
    }

    /// The next event's type, and the event itself when its type is in `building` (a
    /// mask of `1 << type`; an `EntryCreated` with its name in place); the others are read
    /// past without being built. Nil after the last.
    public mutating func next(building: UInt64) throws(DecodeError) -> LogItem? {
        guard let type = try nextType() else { return nil }
        if building & (1 << UInt64(type.rawValue)) != 0 {
            let item: LogItem
            if type == .entryCreated {
                item = .created(
                    parent: try reader.parent(&context), name: try reader.bytesInPlace(),
                    metadata: try reader.compactMetadata(&context))
            } else {
                item = .other(try otherEvent(type))
            }
            return item
        }
        switch type {
        case .entryCreated:
            _ = try reader.parent(&context); _ = try reader.bytesInPlace()
            // No event built later in the block holds metadata: its fields need not be known.
            if building & Self.metadataTypes == 0 {
                try reader.skipCompactMetadata(context)
            } else {
                _ = try reader.compactMetadata(&context)
            }
        case .directoryListed:
            _ = try reader.parent(&context); _ = try reader.varint()
        default:
            _ = try otherEvent(type)
        }
        return .unbuilt(type)
    }

    static let metadataTypes = [EventType.entryCreated, .entryUpdated, .entryMoved].reduce(UInt64(0)) { $0 | 1 << UInt64($1.rawValue) }

    /// Calls `body` with each `EntryCreated` from `from` through `through` (parent, name,
    /// metadata); other events are read past. False once `body` or the range ended.
    ///
    /// The listings' hot path, beside `next(building:)`: a rescan reads every unchanged
    /// directory's names this way, and handing out a `LogItem` (as large as the largest
    /// event) per entry cost a tenth more instructions in a replay (measured).
    public mutating func forEachCreated(
        from: UInt64, through: UInt64,
        _ body: (UInt64, UnsafeRawBufferPointer, EntryMetadata) throws -> Bool
    ) throws -> Bool {
        while true {
            let seq = sequence
            if seq > through && index < count { return false }
            guard let type = try nextType() else { return true }
            guard type == .entryCreated else {
                if type == .directoryListed {
                    _ = try reader.parent(&context)
                    _ = try reader.varint()
                } else {
                    _ = try otherEvent(type)
                }
                continue
            }
            let parent = try reader.parent(&context), name = try reader.bytesInPlace()
            let m = try reader.compactMetadata(&context)
            if seq >= from, try !body(parent, name, m) { return false }
        }
    }

    private mutating func otherEvent(_ type: EventType) throws(DecodeError) -> Event {
        try reader.payload(type, &context)
    }
}

extension LogItem {
    /// The event's type, built or not.
    public var type: EventType {
        switch self {
        case .created: .entryCreated
        case let .other(e): e.type
        case let .unbuilt(type): type
        }
    }

    /// The event, its name copied out of the block.
    /// - Precondition: it was built (not `.unbuilt`).
    public var event: Event {
        switch self {
        case let .created(parent, name, m): .entryCreated(parent: parent, name: Array(name), m)
        case let .other(e): e
        case let .unbuilt(type): preconditionFailure("a \(type.name) event that was not built")
        }
    }
}

extension EventRecord {
    /// The record of an event the log handed out (built).
    public init(sequence: UInt64, run: UInt32, timeMs: Int64, item: LogItem) {
        self.init(sequence: sequence, run: run, timeMs: timeMs, event: item.event)
    }
}
