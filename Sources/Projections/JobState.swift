import Events

/// The state of a run in flight, folded from that run's events: which directories it
/// has listed (their `DirectoryListed`), how far it got. Resume = the latest snapshot of
/// it plus the fold of the run's events after that snapshot.
public struct JobState: Sendable, Equatable {
    /// Directories whose listing this run has recorded: a resumed walk takes their names
    /// and metadata from the views instead of reading and stat'ing them again.
    public var listed: Set<UInt64> = []
    /// Entry events (created, updated, removed, moved) the run has written.
    public var entryEvents: UInt64 = 0
    /// The last sequence folded.
    public var lastSequence: UInt64 = 0

    public init() {}

    /// Folds one event of this run.
    public mutating func apply(_ record: EventRecord) {
        switch record.event {
        case let .directoryListed(dirID, _): listed.insert(dirID)
        case .entryCreated, .entryUpdated, .entryRemoved, .entryMoved: entryEvents += 1
        default: break
        }
        lastSequence = record.sequence
    }

    /// Version of the snapshot encoding. A snapshot of another version is not read: resume
    /// then folds the run's events from its start instead.
    public static let snapshotVersion: UInt8 = 1

    /// The snapshot bytes: version, last sequence, entry events, listed ids (sorted, deltas).
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + listed.count * 3)
        w.byte(Self.snapshotVersion)
        w.varint(lastSequence)
        w.varint(entryEvents)
        w.varint(UInt64(listed.count))
        var previous: UInt64 = 0
        for id in listed.sorted() {
            w.varint(id - previous)
            previous = id
        }
        return Array(w.bytes)
    }

    /// Reads a snapshot; nil when it is of another version or damaged (never misread).
    public init?(snapshot bytes: UnsafeRawBufferPointer) {
        var r = ByteReader(buffer: bytes)
        guard let version = try? r.byte(), version == Self.snapshotVersion,
            let last = try? r.varint(), let events = try? r.varint(), let count = try? r.varint(),
            count <= UInt64(bytes.count)
        else { return nil }
        var listed = Set<UInt64>(minimumCapacity: Int(count))
        var id: UInt64 = 0
        for _ in 0..<count {
            guard let delta = try? r.varint() else { return nil }
            id &+= delta
            listed.insert(id)
        }
        guard r.isAtEnd else { return nil }
        self.listed = listed
        self.entryEvents = events
        self.lastSequence = last
    }
}
