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
        .pathRejected(parent: 9, name: oddName, rule: "glob *.o"),
        .entryCreated(parent: 1, name: Array("a".utf8), metadata),
        .entryCreated(parent: 1, name: [], directory),
        .entryUpdated(parent: 2, name: oddName, old: metadata, new: directory),
        .entryRemoved(parent: 3, name: Array("gone".utf8)),
        .entryMoved(fromParent: 4, fromName: Array("x".utf8), toParent: 5, toName: oddName, directory),
        .nonCriticalError(parent: 6, name: Array("locked".utf8), errno: 13, operation: .openDirectory),
    ]

    /// Re-computes a record's checksum after a deliberate edit.
    public static func resealed(_ record: [UInt8], sequence: UInt64) -> [UInt8] {
        var bytes = Array(record.dropLast(4))
        var key = RecordFormat.key(sequence)
        let crc = withUnsafeBytes(of: &key) { k in bytes.withUnsafeBytes { CRC32C.update(CRC32C.update(0, k), $0) } }
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }
}
