import EventStore
import Events
import History
import Projections

/// ncdu's JSON export (format 1.2, https://dev.yorhel.nl/ncdu/jsonfmt), written from the
/// index and read into a run, so ncdu, gdu and their tools browse an evindex index and an
/// `ncdu -o` file becomes an index.
///
/// Rule: names are the entry's raw bytes inside the JSON string (only `"`, `\` and control
/// bytes escaped), as ncdu writes them: a name that is not UTF-8 stays itself. Each entry
/// carries `asize` (st_size) and `dsize` (st_blocks × 512), `ino`, and for a non-directory
/// with more than one link `hlnkc` and `nlink`, so a reader counts it once as du does;
/// `dev` is written where it differs from the directory above (the root's is its first
/// child's: the index keeps no root's own inode). A directory the walk did not enter
/// (another filesystem) is `"excluded":"otherfs"`, one whose listing met an error has
/// `"read_error":true`; symlinks and others are `"notreg":true`.
public enum NcduFormat {
    /// Writes the index below directory `dirID` (at `path`) as one ncdu export, calling
    /// `flush` with each 64 KiB written.
    public static func write(
        _ snapshot: IndexSnapshot, dirID: UInt64, path: [UInt8], metadata: EntryMetadata?, timestamp: Int64,
        flush: ([UInt8]) throws -> Void
    ) throws {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 17)
        out.append(contentsOf: #"[1,2,{"progname":"evindex","progver":"0.1.0","timestamp":"#.utf8)
        appendDecimal(UInt64(max(timestamp, 0)), to: &out)
        out.append(contentsOf: "},\n".utf8)
        guard let row = try snapshot.directory(dirID) else { throw ViewError.corrupt("directory \(dirID) has no row") }
        var firstDevice: UInt64?
        try snapshot.forEachChild(of: dirID) { _, m in
            firstDevice = m.device
            return false
        }
        let device = metadata?.device ?? firstDevice ?? 0
        // The root: its own sizes are the row's.
        out.append(contentsOf: "[{".utf8)
        key(&out, "name", first: true)
        string(&out, path)
        number(&out, "asize", UInt64(max(row.ownApparentBytes, 0)))
        number(&out, "dsize", UInt64(max(row.ownDiskBytes, 0)))
        number(&out, "dev", device)
        if let metadata { number(&out, "ino", metadata.inode) }
        if try snapshot.isListingIncomplete(dirID) { out.append(contentsOf: #","read_error":true"#.utf8) }
        out.append(UInt8(ascii: "}"))
        try children(snapshot, dirID, device: device, &out, flush)
        out.append(contentsOf: "]]\n".utf8)
        try flush(out)
    }

    private static func children(
        _ snapshot: IndexSnapshot, _ dirID: UInt64, device: UInt64, _ out: inout [UInt8], _ flush: ([UInt8]) throws -> Void
    ) throws {
        var subdirectories: [([UInt8], EntryMetadata)] = []
        try snapshot.forEachChild(of: dirID) { name, m in
            if m.kind == .directory && m.dirID != 0 {
                subdirectories.append((Array(name), m))
            } else {
                out.append(contentsOf: ",\n".utf8)
                info(&out, name, m, parentDevice: device)
            }
            return true
        }
        for (name, m) in subdirectories {
            out.append(contentsOf: ",\n[".utf8)
            name.withUnsafeBytes { info(&out, $0, m, parentDevice: device, open: true) }
            if try snapshot.isListingIncomplete(m.dirID) { out.append(contentsOf: #","read_error":true"#.utf8) }
            out.append(UInt8(ascii: "}"))
            if out.count >= 1 << 16 {
                try flush(out)
                out.removeAll(keepingCapacity: true)
            }
            try children(snapshot, m.dirID, device: m.device, &out, flush)
            out.append(UInt8(ascii: "]"))
        }
    }

    /// One entry's info object; `open` leaves it unclosed (a directory may add a field).
    private static func info(_ out: inout [UInt8], _ name: UnsafeRawBufferPointer, _ m: EntryMetadata, parentDevice: UInt64, open: Bool = false) {
        out.append(UInt8(ascii: "{"))
        key(&out, "name", first: true)
        string(&out, name)
        if m.size > 0 { number(&out, "asize", m.size) }
        if m.diskBytes > 0 { number(&out, "dsize", m.diskBytes) }
        if m.device != parentDevice { number(&out, "dev", m.device) }
        number(&out, "ino", m.inode)
        if m.isSharedInode {
            out.append(contentsOf: #","hlnkc":true"#.utf8)
            number(&out, "nlink", UInt64(m.nlink))
        }
        if m.kind == .directory && m.dirID == 0 { out.append(contentsOf: #","excluded":"otherfs""#.utf8) }
        if m.kind == .symlink || m.kind == .other { out.append(contentsOf: #","notreg":true"#.utf8) }
        if !open { out.append(UInt8(ascii: "}")) }
    }

    private static func key(_ out: inout [UInt8], _ k: String, first: Bool = false) {
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: k.utf8)
        out.append(contentsOf: "\":".utf8)
    }

    private static func number(_ out: inout [UInt8], _ k: String, _ v: UInt64) {
        key(&out, k)
        appendDecimal(v, to: &out)
    }

    /// A JSON string of raw bytes: `"`, `\` and control bytes escaped, every other byte as is.
    private static func string<C: Collection>(_ out: inout [UInt8], _ bytes: C) where C.Element == UInt8 {
        out.append(UInt8(ascii: "\""))
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0..<0x20:
                let hex = { (n: UInt8) in n < 10 ? 0x30 + n : 0x57 + n }
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hex(b >> 4), hex(b & 15)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Why an ncdu export could not be read: the byte offset and what was expected there.
public struct NcduFormatError: Error, CustomStringConvertible, Sendable {
    public var offset: Int
    public var message: String
    public var description: String { "not an ncdu export: at byte \(offset): \(message)" }
}

extension NcduFormat {
    /// Reads an ncdu export (format 1.x, plain or extended) as a run that indexes its tree:
    /// JobStarted at the root (its name, an absolute path), an EntryCreated per entry
    /// (excluded ones left out), a DirectoryListed per directory, JobCompleted. `asize` is
    /// the size, `dsize` / 512 the blocks, `mode`, `uid`, `gid` and `mtime` are taken when
    /// the export is extended; without `mode`, `notreg` entries are recorded as others.
    public static func read(_ bytes: [UInt8], version: String) throws -> ExportedRun {
        var parser = NcduParser(bytes: bytes)
        return try parser.run(version: version)
    }
}

private enum NcduValue {
    case number(Int64)
    case string([UInt8])
    case bool(Bool)
    case other
}

private struct NcduParser {
    let bytes: [UInt8]
    var i = 0
    var nextDirID: UInt64 = 1
    var events: [Event] = []
    var counts = RunCounts()
    var timestamp: Int64 = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ message: String) -> NcduFormatError { NcduFormatError(offset: i, message: message) }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard i < bytes.count, bytes[i] == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        i += 1
    }

    mutating func peek() -> UInt8? {
        skipSpace()
        return i < bytes.count ? bytes[i] : nil
    }

    mutating func run(version: String) throws -> ExportedRun {
        try expect(UInt8(ascii: "["))
        guard case let .number(major) = try value(), major == 1 else { throw fail("the major version must be 1") }
        try expect(UInt8(ascii: ","))
        guard case .number = try value() else { throw fail("expected the minor version") }
        try expect(UInt8(ascii: ","))
        // The metadata: only the timestamp is kept (the run's time).
        for (k, v) in try object() where k == Array("timestamp".utf8) {
            if case let .number(t) = v { timestamp = t }
        }
        try expect(UInt8(ascii: ","))
        try expect(UInt8(ascii: "["))
        let rootInfo = try object()
        guard let root = rootInfo.first(where: { $0.0 == Array("name".utf8) }).flatMap({ if case let .string(s) = $0.1 { s } else { nil } }),
            root.first == UInt8(ascii: "/")
        else { throw fail("the root's name must be an absolute path") }
        let rootID = nextDirID
        nextDirID += 1
        let rootMetadata = metadata(rootInfo, isDirectory: true, parentDevice: 0, dirID: 0)
        events.append(.jobStarted(root: root, rootDirID: rootID, options: "", version: version, rootMetadata: rootMetadata.0))
        try directoryRest(rootID, device: rootMetadata.0.device)
        try expect(UInt8(ascii: "]"))
        skipSpace()
        guard i == bytes.count else { throw fail("trailing bytes after the export") }
        events.append(.jobCompleted(counts))
        let timeMs = timestamp * 1000
        let records = events.enumerated().map { n, e in EventRecord(sequence: UInt64(n + 1), run: 1, timeMs: timeMs, event: e) }
        var row = RunRecord(
            id: 1, root: root, rootDirID: rootID, status: .completed, firstSequence: 1, lastSequence: UInt64(records.count),
            startedMs: timeMs, endedMs: timeMs, counts: counts)
        row.isFirstIndex = true
        return ExportedRun(run: row, base: [], events: records)
    }

    /// The rest of a directory's array after its info object: its entries, then `]`.
    mutating func directoryRest(_ dirID: UInt64, device: UInt64) throws {
        var listed: UInt64 = 0
        while peek() == UInt8(ascii: ",") {
            i += 1
            switch peek() {
            case UInt8(ascii: "{"):
                let info = try object()
                let (m, name, excluded) = metadata(info, isDirectory: false, parentDevice: device, dirID: 0)
                guard let name else { throw fail("an entry without a name") }
                if excluded { continue }
                events.append(.entryCreated(parent: dirID, name: name, m))
                counts.add(m.kind, size: m.size)
                counts.created += 1
                listed += 1
            case UInt8(ascii: "["):
                i += 1
                let info = try object()
                let childID = nextDirID
                let (m, name, excluded) = metadata(info, isDirectory: true, parentDevice: device, dirID: childID)
                guard let name else { throw fail("a directory without a name") }
                if excluded {
                    // Not entered (another filesystem): an entry, not a listing, as a run records it.
                    var outside = m
                    outside.dirID = 0
                    events.append(.entryCreated(parent: dirID, name: name, outside))
                    counts.add(.directory, size: 0)
                    counts.created += 1
                    listed += 1
                    try skipRest()
                    continue
                }
                nextDirID += 1
                events.append(.entryCreated(parent: dirID, name: name, m))
                counts.add(.directory, size: 0)
                counts.created += 1
                listed += 1
                try directoryRest(childID, device: m.device)
            default:
                throw fail("expected an entry ({…}) or a directory ([…])")
            }
        }
        try expect(UInt8(ascii: "]"))
        events.append(.directoryListed(dirID: dirID, children: listed))
    }

    /// Skips the rest of an array already entered.
    mutating func skipRest() throws {
        while peek() == UInt8(ascii: ",") {
            i += 1
            _ = try value()
        }
        try expect(UInt8(ascii: "]"))
    }

    func metadata(_ info: [([UInt8], NcduValue)], isDirectory: Bool, parentDevice: UInt64, dirID: UInt64) -> (EntryMetadata, [UInt8]?, Bool) {
        var name: [UInt8]?
        var asize: UInt64 = 0, dsize: UInt64 = 0, inode: UInt64 = 0, device = parentDevice, nlink: UInt32 = 1
        var mode: UInt32?, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Int64 = 0
        var notreg = false, excluded = false, hardLinked = false
        for (k, v) in info {
            switch (String(decoding: k, as: UTF8.self), v) {
            case let ("name", .string(s)): name = s
            case let ("asize", .number(n)): asize = UInt64(max(n, 0))
            case let ("dsize", .number(n)): dsize = UInt64(max(n, 0))
            case let ("ino", .number(n)): inode = UInt64(max(n, 0))
            case let ("dev", .number(n)): device = UInt64(max(n, 0))
            case let ("nlink", .number(n)): nlink = UInt32(clamping: max(n, 1))
            case let ("hlnkc", .bool(b)): hardLinked = b
            case let ("notreg", .bool(b)): notreg = b
            case ("excluded", _): excluded = true
            case let ("mode", .number(n)): mode = UInt32(clamping: max(n, 0))
            case let ("uid", .number(n)): uid = UInt32(clamping: max(n, 0))
            case let ("gid", .number(n)): gid = UInt32(clamping: max(n, 0))
            case let ("mtime", .number(n)): mtime = n
            default: break
            }
        }
        if hardLinked && nlink < 2 { nlink = 2 }
        let kind: EntryKind
        if let mode {
            switch mode & 0o170000 {
            case 0o040000: kind = .directory
            case 0o100000: kind = .file
            case 0o120000: kind = .symlink
            default: kind = isDirectory ? .directory : .other
            }
        } else {
            kind = isDirectory ? .directory : notreg ? .other : .file
        }
        let typeBits: UInt32 = kind == .directory ? 0o040000 : kind == .file ? 0o100000 : kind == .symlink ? 0o120000 : 0o010000
        let m = EntryMetadata(
            kind: kind, mode: mode ?? (typeBits | (kind == .directory ? 0o755 : 0o644)), inode: inode, device: device, size: asize,
            mtimeNs: mtime.multipliedReportingOverflow(by: 1_000_000_000).overflow ? 0 : mtime * 1_000_000_000, ctimeNs: 0,
            dirID: kind == .directory ? dirID : 0, blocks: dsize / 512, nlink: max(nlink, 1), uid: uid, gid: gid)
        return (m, name, excluded)
    }

    mutating func object() throws -> [([UInt8], NcduValue)] {
        try expect(UInt8(ascii: "{"))
        var fields: [([UInt8], NcduValue)] = []
        if peek() == UInt8(ascii: "}") {
            i += 1
            return fields
        }
        while true {
            skipSpace()
            guard case let .string(k) = try value() else { throw fail("expected a key") }
            try expect(UInt8(ascii: ":"))
            fields.append((k, try value()))
            if peek() == UInt8(ascii: ",") {
                i += 1
                continue
            }
            try expect(UInt8(ascii: "}"))
            return fields
        }
    }

    mutating func value() throws -> NcduValue {
        guard let c = peek() else { throw fail("unexpected end") }
        switch c {
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = i
            i += 1
            while i < bytes.count,
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i])
                    || [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-")].contains(bytes[i])
            { i += 1 }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if let n = Int64(text) { return .number(n) }
            if let d = Double(text), d.isFinite { return .number(Int64(clamping: Int(d))) }
            throw fail("invalid number \(text)")
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            for (word, v) in [("true", NcduValue.bool(true)), ("false", .bool(false)), ("null", .other)] {
                let w = Array(word.utf8)
                if bytes.count - i >= w.count, Array(bytes[i..<i + w.count]) == w {
                    i += w.count
                    return v
                }
            }
            throw fail("invalid literal")
        case UInt8(ascii: "{"):
            _ = try object()
            return .other
        case UInt8(ascii: "["):
            i += 1
            if peek() == UInt8(ascii: "]") {
                i += 1
                return .other
            }
            _ = try value()
            try skipRest()
            return .other
        default:
            throw fail("unexpected byte \(c)")
        }
    }

    /// A string's raw bytes: escapes decoded, every other byte kept (names need not be UTF-8).
    mutating func string() throws -> [UInt8] {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            switch b {
            case UInt8(ascii: "\""): return out
            case UInt8(ascii: "\\"):
                guard i < bytes.count else { throw fail("unterminated string") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
                case UInt8(ascii: "u"):
                    guard bytes.count - i >= 4, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
                        throw fail("invalid \\u escape")
                    }
                    i += 4
                    if v < 0x80 {
                        out.append(UInt8(v))
                    } else if let scalar = Unicode.Scalar(v) {
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    } else {
                        throw fail("invalid \\u escape")
                    }
                default: throw fail("invalid escape")
                }
            default: out.append(b)
            }
        }
        throw fail("unterminated string")
    }
}
