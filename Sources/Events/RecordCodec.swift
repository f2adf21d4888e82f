/// The primitives of the log's bytes (`ByteWriter`, `ByteReader`), and the schema-1
/// record: one event per LMDB value, read forever. Layout in Docs/EVENTS.md:
///
///     key:   sequence, 8 bytes big-endian
///     value: u8 schema version | u8 type | varint run | varint time_ms | payload | u32le crc32c
///
/// The checksum covers the key and every value byte before it, so a record copied under
/// the wrong key is caught too. Schema 2, blocks of events, is in BlockCodec.swift.
public enum RecordFormat {
    /// The newest schema version this build reads: 1, one record per event, and 2, blocks
    /// of events (`BlockFormat`, the one it writes). Newer versions are refused.
    public static let schemaVersion: UInt8 = BlockFormat.version
    public static let checksumSize = 4
    /// Version 1: one record per event. Still read; written only by `RecordEncoder`
    /// (tests and the golden fixture).
    public static let singleRecordVersion: UInt8 = 1

    /// The 8-byte big-endian key of a sequence number.
    @inline(__always)
    public static func key(_ sequence: UInt64) -> UInt64 { sequence.bigEndian }
}

/// Why a stored record could not be read.
public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case checksumMismatch(stored: UInt32, computed: UInt32)
        case truncated
        case newerSchema(UInt8)
        case unknownType(UInt8)
        case invalidValue(String)
    }
    public var sequence: UInt64
    public var reason: Reason

    public init(sequence: UInt64, reason: Reason) { self.sequence = sequence; self.reason = reason }

    public var description: String {
        switch reason {
        case let .checksumMismatch(stored, computed):
            "record \(sequence) is corrupt: checksum \(hex(stored)) stored, \(hex(computed)) computed"
        case .truncated:
            "record \(sequence) is truncated"
        case let .newerSchema(v):
            "record \(sequence) has schema version \(v), newer than this evindex reads (\(RecordFormat.schemaVersion)); upgrade evindex"
        case let .unknownType(t):
            "record \(sequence) has an unknown event type \(t)"
        case let .invalidValue(what):
            "record \(sequence) has an invalid \(what)"
        }
    }
}

private func hex(_ v: UInt32) -> String { "0x" + fixedWidthHex(v) }

/// A growable byte buffer reused across records, so encoding allocates nothing per event.
public struct ByteWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutableRawPointer
    @usableFromInline var capacity: Int
    public internal(set) var count = 0

    public init(capacity: Int = 4096) {
        self.capacity = capacity
        self.base = .allocate(byteCount: capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public mutating func reset() { count = 0 }

    @inline(__always)
    mutating func reserve(_ n: Int) {
        if count + n > capacity {
            var newCapacity = capacity * 2
            while newCapacity < count + n { newCapacity *= 2 }
            let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
            newBase.copyMemory(from: base, byteCount: count)
            base.deallocate()
            base = newBase
            capacity = newCapacity
        }
    }

    @inline(__always)
    public mutating func byte(_ b: UInt8) {
        reserve(1)
        base.storeBytes(of: b, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    public mutating func varint(_ value: UInt64) {
        reserve(10)
        var v = value
        while v >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: count, as: UInt8.self)
            count += 1
            v >>= 7
        }
        base.storeBytes(of: UInt8(v), toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    public mutating func zigzag(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// How many bytes `varint(value)` writes.
    public static func varintSize(_ value: UInt64) -> Int { value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7 }

    /// `raw` as it is, with no length before it.
    @inline(__always)
    public mutating func raw(_ raw: UnsafeRawBufferPointer) {
        reserve(raw.count)
        if raw.count > 0 { (base + count).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        count += raw.count
    }

    @inline(__always)
    public mutating func bytes(_ raw: UnsafeRawBufferPointer) {
        varint(UInt64(raw.count))
        reserve(raw.count)
        if raw.count > 0 { (base + count).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        count += raw.count
    }

    public mutating func bytes(_ raw: [UInt8]) { raw.withUnsafeBytes { bytes($0) } }
    public mutating func string(_ s: String) { bytes(Array(s.utf8)) }

    /// Entry metadata as records and the file-path view store it.
    @inline(__always)
    public mutating func metadata(_ m: EntryMetadata) {
        byte(m.kind.rawValue)
        varint(UInt64(m.mode))
        varint(m.inode)
        varint(m.device)
        varint(m.size)
        zigzag(m.mtimeNs)
        zigzag(m.ctimeNs)
        zigzag(m.btimeNs)
        if m.kind == .directory { varint(m.dirID) }
    }

    @inline(__always)
    mutating func uint32LE(_ v: UInt32) {
        reserve(4)
        (base + count).storeBytes(of: v.littleEndian, as: UInt32.self)
        count += 4
    }
}

/// Reads a record's bytes; every read is bounds-checked and throws on truncation.
public struct ByteReader {
    public let buffer: UnsafeRawBufferPointer
    public var offset = 0
    /// The record being read, named in errors (0 outside the log).
    public let sequence: UInt64

    public init(buffer: UnsafeRawBufferPointer, sequence: UInt64 = 0) {
        self.buffer = buffer
        self.sequence = sequence
    }

    public var isAtEnd: Bool { offset >= buffer.count }

    public mutating func byte() throws(DecodeError) -> UInt8 {
        guard offset < buffer.count else { throw DecodeError(sequence: sequence, reason: .truncated) }
        defer { offset += 1 }
        return buffer[offset]
    }

    @inline(__always)
    public mutating func varint() throws(DecodeError) -> UInt64 {
        // Most varints are one byte, and most have ten bytes of room after them: no
        // bounds check per byte then. The slow path below rejects what this one cannot read.
        if offset < buffer.count {
            let first = buffer[offset]
            if first < 0x80 {
                offset += 1
                return UInt64(first)
            }
            if buffer.count - offset >= 10 {
                var result: UInt64 = 0
                var shift: UInt64 = 0
                var i = offset
                while shift < 63 {
                    let b = buffer[i]
                    i += 1
                    result |= UInt64(b & 0x7F) << shift
                    if b < 0x80 {
                        offset = i
                        return result
                    }
                    shift += 7
                }
            }
        }
        return try varintSlowly()
    }

    mutating func varintSlowly() throws(DecodeError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw DecodeError(sequence: sequence, reason: .invalidValue("varint")) }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw DecodeError(sequence: sequence, reason: .invalidValue("varint")) }
        }
    }

    public mutating func zigzag() throws(DecodeError) -> Int64 {
        let u = try varint()
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    public mutating func uint32() throws(DecodeError) -> UInt32 {
        let v = try varint()
        guard v <= UInt32.max else { throw DecodeError(sequence: sequence, reason: .invalidValue("32-bit field")) }
        return UInt32(v)
    }

    public mutating func bytes() throws(DecodeError) -> [UInt8] {
        let n = try varint()
        guard n <= UInt64(buffer.count - offset) else { throw DecodeError(sequence: sequence, reason: .truncated) }
        defer { offset += Int(n) }
        return Array(UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + Int(n)]))
    }

    public mutating func metadata() throws(DecodeError) -> EntryMetadata {
        let k = try byte()
        guard let kind = EntryKind(rawValue: k) else { throw DecodeError(sequence: sequence, reason: .invalidValue("kind")) }
        var m = EntryMetadata(
            kind: kind, mode: try uint32(), inode: try varint(), device: try varint(),
            size: try varint(), mtimeNs: try zigzag(), ctimeNs: try zigzag(), btimeNs: try zigzag())
        if kind == .directory { m.dirID = try varint() }
        return m
    }

    mutating func runCounts() throws(DecodeError) -> RunCounts {
        var c = RunCounts()
        c.directories = try varint(); c.files = try varint(); c.symlinks = try varint()
        c.others = try varint(); c.bytes = try varint(); c.errors = try varint()
        c.created = try varint(); c.updated = try varint(); c.removed = try varint(); c.moved = try varint()
        return c
    }

    /// The rest of a `NonCriticalError` after its parent.
    mutating func nonCriticalError(parent: UInt64) throws(DecodeError) -> Event {
        let name = try bytes()
        guard let errno = Int32(exactly: try zigzag()) else { throw DecodeError(sequence: sequence, reason: .invalidValue("errno")) }
        guard let op = FileOperation(rawValue: try byte()) else {
            throw DecodeError(sequence: sequence, reason: .invalidValue("operation"))
        }
        return .nonCriticalError(parent: parent, name: name, errno: errno, operation: op)
    }

    public mutating func string() throws(DecodeError) -> String {
        let b = try bytes()
        guard let s = String(validating: b, as: UTF8.self) else {
            throw DecodeError(sequence: sequence, reason: .invalidValue("string"))
        }
        return s
    }
}

/// Encodes version-1 records (one per event) into a reused buffer. The writer stores
/// blocks (`BlockEncoder`); this stays for reading tests and the golden fixture.
public struct RecordEncoder: ~Copyable {
    public var writer = ByteWriter()

    public init() {}

    /// The encoded value of the last record.
    public var bytes: UnsafeRawBufferPointer { writer.bytes }

    @inline(__always)
    mutating func begin(_ type: EventType, run: UInt32, timeMs: Int64) {
        writer.reset()
        writer.byte(RecordFormat.singleRecordVersion)
        writer.byte(type.rawValue)
        writer.varint(UInt64(run))
        writer.varint(UInt64(bitPattern: timeMs))
    }

    @inline(__always)
    mutating func finish(sequence: UInt64) {
        var key = RecordFormat.key(sequence)
        let crc = withUnsafeBytes(of: &key) { k in CRC32C.update(CRC32C.update(0, k), writer.bytes) }
        writer.uint32LE(crc)
    }

    /// Encodes any record.
    public mutating func encode(_ record: EventRecord) {
        begin(record.event.type, run: record.run, timeMs: record.timeMs)
        var plain = PlainFields()
        writer.payload(record.event, &plain)
        finish(sequence: record.sequence)
    }

    /// Encodes one record into a fresh array (tests, fixtures, rare events).
    public static func encoded(_ record: EventRecord) -> [UInt8] {
        var e = RecordEncoder()
        e.encode(record)
        return Array(e.bytes)
    }
}

/// Decodes stored records, checking version and checksum first.
public enum RecordDecoder {
    /// Verifies the checksum of the record stored under `sequence`.
    public static func verify(sequence: UInt64, value: UnsafeRawBufferPointer) throws(DecodeError) {
        guard value.count >= 2 + RecordFormat.checksumSize else {
            throw DecodeError(sequence: sequence, reason: .truncated)
        }
        // The checksum first: a damaged version byte is corruption, not a newer schema.
        let body = UnsafeRawBufferPointer(rebasing: value[0..<value.count - RecordFormat.checksumSize])
        var key = RecordFormat.key(sequence)
        let computed = withUnsafeBytes(of: &key) { k in CRC32C.update(CRC32C.update(0, k), body) }
        let stored = value.loadUnaligned(fromByteOffset: value.count - RecordFormat.checksumSize, as: UInt32.self).littleEndian
        if stored != computed {
            throw DecodeError(sequence: sequence, reason: .checksumMismatch(stored: stored, computed: computed))
        }
        if value[0] == 0 { throw DecodeError(sequence: sequence, reason: .invalidValue("schema version 0")) }
        if value[0] > RecordFormat.schemaVersion {
            throw DecodeError(sequence: sequence, reason: .newerSchema(value[0]))
        }
    }

    /// Decodes the record stored under `sequence`.
    ///
    /// - Throws: `DecodeError` naming the sequence: checksum mismatch, truncation, a
    ///   newer schema version, an unknown type. Never traps, whatever the bytes.
    public static func decode(sequence: UInt64, value: UnsafeRawBufferPointer) throws(DecodeError) -> EventRecord {
        try verify(sequence: sequence, value: value)
        guard value[0] == RecordFormat.singleRecordVersion else {
            throw DecodeError(sequence: sequence, reason: .invalidValue("record (a block of version \(value[0]))"))
        }
        var r = ByteReader(
            buffer: UnsafeRawBufferPointer(rebasing: value[0..<value.count - RecordFormat.checksumSize]),
            sequence: sequence)
        _ = try r.byte()
        let typeByte = try r.byte()
        guard let type = EventType(rawValue: typeByte) else {
            throw DecodeError(sequence: sequence, reason: .unknownType(typeByte))
        }
        let run = try r.uint32()
        let time = Int64(bitPattern: try r.varint())
        var plain = PlainFields()
        let event = try r.payload(type, &plain)
        guard r.isAtEnd else { throw DecodeError(sequence: sequence, reason: .invalidValue("record length")) }
        return EventRecord(sequence: sequence, run: run, timeMs: time, event: event)
    }

    public static func decode(sequence: UInt64, value: [UInt8]) throws(DecodeError) -> EventRecord {
        let result = value.withUnsafeBytes { v in Result { () throws(DecodeError) in try decode(sequence: sequence, value: v) } }
        return try result.get()
    }

}
