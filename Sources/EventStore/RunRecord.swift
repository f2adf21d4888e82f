import Events

/// A run's row in the runs table: what `evindex runs` shows.
public struct RunRecord: Sendable, Hashable {
    public enum Status: UInt8, Sendable {
        case running = 1
        case completed = 2
        case failed = 3
        case paused = 4
        /// Given up for a new run (`--restart`): never resumed.
        case abandoned = 5

        public var name: String {
            switch self {
            case .running: "running"
            case .completed: "completed"
            case .failed: "failed"
            case .paused: "paused"
            case .abandoned: "abandoned"
            }
        }

        /// Whether a later `run` of the same root takes this run up again: paused, cut off
        /// (still "running" after a crash) or failed (a full disk, say) once the cause is gone.
        public var isResumable: Bool { self == .running || self == .paused || self == .failed }
    }

    public var id: UInt32
    /// The absolute root path, as bytes.
    public var root: [UInt8]
    public var rootDirID: UInt64
    public var status: Status
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var startedMs: Int64
    public var endedMs: Int64
    public var counts: RunCounts
    /// The failure message of a failed run.
    public var message: String
    /// The root had no index when the run began: nothing can have vanished or moved.
    public var isFirstIndex = false

    public init(
        id: UInt32, root: [UInt8], rootDirID: UInt64, status: Status, firstSequence: UInt64,
        lastSequence: UInt64, startedMs: Int64, endedMs: Int64 = 0, counts: RunCounts = RunCounts(),
        message: String = ""
    ) {
        self.id = id; self.root = root; self.rootDirID = rootDirID; self.status = status
        self.firstSequence = firstSequence; self.lastSequence = lastSequence
        self.startedMs = startedMs; self.endedMs = endedMs; self.counts = counts; self.message = message
    }

    static let formatVersion: UInt8 = 1

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        w.byte(Self.formatVersion)
        w.bytes(root)
        w.varint(rootDirID)
        w.byte(status.rawValue)
        w.varint(firstSequence)
        w.varint(lastSequence)
        w.zigzag(startedMs)
        w.zigzag(endedMs)
        let c = counts
        for v in [
            c.directories, c.files, c.symlinks, c.others, c.bytes, c.errors,
            c.created, c.updated, c.removed, c.moved,
        ] { w.varint(v) }
        w.string(message)
        w.byte(isFirstIndex ? 1 : 0)
        return Array(w.bytes)
    }

    init(id: UInt32, decoding bytes: UnsafeRawBufferPointer) throws {
        var r = ByteReader(buffer: bytes)
        let version = try r.byte()
        guard version <= Self.formatVersion else {
            throw StoreError(.newerSchema, "run \(id) was written by a newer evindex")
        }
        let root = try r.bytes()
        let rootDirID = try r.varint()
        guard let status = Status(rawValue: try r.byte()) else { throw StoreError(.corrupt, "run \(id) has an unknown status") }
        let first = try r.varint(), last = try r.varint()
        let started = try r.zigzag(), ended = try r.zigzag()
        var c = RunCounts()
        c.directories = try r.varint(); c.files = try r.varint(); c.symlinks = try r.varint()
        c.others = try r.varint(); c.bytes = try r.varint(); c.errors = try r.varint()
        c.created = try r.varint(); c.updated = try r.varint(); c.removed = try r.varint(); c.moved = try r.varint()
        self.init(
            id: id, root: root, rootDirID: rootDirID, status: status, firstSequence: first, lastSequence: last,
            startedMs: started, endedMs: ended, counts: c, message: try r.string())
        if !r.isAtEnd { isFirstIndex = try r.byte() == 1 }
    }
}
