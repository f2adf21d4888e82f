import Events

/// One sample of every event type, with awkward values: the codec's test table.
public enum Samples {
    public static let metadata = EntryMetadata(
        kind: .file, mode: 0o100644, inode: 1 << 40, device: 65024, size: 4_000_000_000,
        mtimeNs: 1_600_000_000_123_456_789, ctimeNs: -5, btimeNs: 1_500_000_000_000_000_001, dirID: 0)
    public static let directory = EntryMetadata(
        kind: .directory, mode: 0o040755, inode: 7, device: 1, size: 4096,
        mtimeNs: 0, ctimeNs: .max, btimeNs: .min, dirID: 42)
    public static let oddName: [UInt8] = Array("line\nbreak ".utf8) + [0xE9, 0xFF, 0x00, 0x80] + Array(repeating: 0x61, count: 200)
    public static var counts: RunCounts {
        var c = RunCounts()
        c.directories = 3; c.files = 1_000_000; c.symlinks = 2; c.others = 1; c.bytes = .max; c.errors = 9
        c.created = 5; c.updated = 6; c.removed = 7; c.moved = 8
        return c
    }

    public static let events: [Event] = [
        .jobStarted(root: Array("/home/ü".utf8) + [0xFE], rootDirID: 1, options: "{\"rules\":[]}", version: "0.1.0"),
        .jobPaused(reason: "SIGINT"),
        .jobResumed,
        .jobCompleted(counts),
        .jobFailed(message: "disk full: /db"),
        .snapshotTaken(entries: 123_456),
        .directoryListed(dirID: .max, children: 0),
        .pathRejected(parent: 9, name: oddName, rule: Array("glob *.o".utf8)),
        .entryCreated(parent: 1, name: Array("a".utf8), metadata),
        .entryCreated(parent: 1, name: [], directory),
        .entryUpdated(parent: 2, name: oddName, old: metadata, new: directory),
        .entryRemoved(parent: 3, name: Array("gone".utf8)),
        .entryMoved(fromParent: 4, fromName: Array("x".utf8), toParent: 5, toName: oddName, directory),
        .nonCriticalError(parent: 6, name: Array("locked".utf8), errno: 13, operation: .openDirectory),
    ]

    /// Metadata with what schema 3 added, at awkward values: fewer blocks than the size
    /// needs (sparse), links past what the ownership byte holds, the largest uid.
    public static let ownedMetadata: EntryMetadata = {
        var m = metadata
        m.blocks = 3; m.nlink = 1_000; m.uid = .max; m.gid = 7
        return m
    }()
    public static let ownedDirectory: EntryMetadata = {
        var m = directory
        m.blocks = 8; m.nlink = 30; m.uid = 0; m.gid = 7
        return m
    }()

    /// `events` as schema 3 writes them: metadata with blocks, links and owner, and the
    /// root's metadata in JobStarted (the schema-1 form has no room for either).
    public static let schema3Events: [Event] = events.map { e in
        switch e {
        case let .jobStarted(root, rootDirID, options, version, _):
            var rootMetadata = ownedDirectory
            rootMetadata.dirID = 0
            return .jobStarted(root: root, rootDirID: rootDirID, options: options, version: version, rootMetadata: rootMetadata)
        case let .entryCreated(parent, name, m): return .entryCreated(parent: parent, name: name, m == metadata ? ownedMetadata : ownedDirectory)
        case let .entryUpdated(parent, name, _, _): return .entryUpdated(parent: parent, name: name, old: ownedMetadata, new: ownedDirectory)
        case let .entryMoved(fromParent, fromName, toParent, toName, _):
            return .entryMoved(fromParent: fromParent, fromName: fromName, toParent: toParent, toName: toName, ownedDirectory)
        default: return e
        }
    }

    /// Re-computes a record's checksum after a deliberate edit.
    public static func resealed(_ record: [UInt8], sequence: UInt64) -> [UInt8] {
        var bytes = Array(record.dropLast(4))
        var key = RecordFormat.key(sequence)
        let crc = withUnsafeBytes(of: &key) { k in bytes.withUnsafeBytes { CRC32C.update(CRC32C.update(0, k), $0) } }
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }
}
