/// The kind of a file-system entry, as recorded in events and views.
public enum EntryKind: UInt8, Sendable, Hashable, CaseIterable {
    case file = 1
    case directory = 2
    case symlink = 3
    /// FIFOs, sockets, devices.
    case other = 4

    /// The word used in JSON output and docs.
    public var name: String {
        switch self {
        case .file: "file"
        case .directory: "dir"
        case .symlink: "symlink"
        case .other: "other"
        }
    }
}

/// What the walker learned about one entry from `fstatat`.
public struct EntryMetadata: Sendable, Hashable {
    public var kind: EntryKind
    public var mode: UInt32
    public var inode: UInt64
    public var device: UInt64
    /// `st_size` in bytes.
    public var size: UInt64
    public var mtimeNs: Int64
    public var ctimeNs: Int64
    /// Birth time, 0 when the filesystem keeps none: a rename keeps it, a new file that
    /// reuses a freed inode does not, which is how a rescan tells moves from new files.
    public var btimeNs: Int64
    /// For a directory, the id its children are keyed under; 0 otherwise.
    public var dirID: UInt64
    /// 512-byte blocks allocated (`st_blocks`): what the entry takes on disk.
    public var blocks: UInt64
    /// Hard links to the inode; 0 when not recorded (an event of schema 1 or 2, written
    /// before evindex kept it): then `blocks`, `uid` and `gid` are not known either.
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32

    public init(
        kind: EntryKind, mode: UInt32, inode: UInt64, device: UInt64, size: UInt64,
        mtimeNs: Int64, ctimeNs: Int64, btimeNs: Int64 = 0, dirID: UInt64 = 0,
        blocks: UInt64 = 0, nlink: UInt32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
    ) {
        self.kind = kind; self.mode = mode; self.inode = inode; self.device = device
        self.size = size; self.mtimeNs = mtimeNs; self.ctimeNs = ctimeNs; self.btimeNs = btimeNs; self.dirID = dirID
        self.blocks = blocks; self.nlink = nlink; self.uid = uid; self.gid = gid
    }

    /// Whether `blocks`, `nlink`, `uid` and `gid` were recorded (schema 3 and later).
    @inline(__always)
    public var hasOwnership: Bool { nlink != 0 }

    /// What du counts for the entry: `st_blocks` × 512; 0 when not recorded.
    @inline(__always)
    public var diskBytes: UInt64 { blocks &* 512 }

    /// Whether du counts this entry once per inode rather than once per name: a
    /// non-directory with more than one link.
    @inline(__always)
    public var isSharedInode: Bool { nlink > 1 && kind != .directory }
}

/// The operation a non-critical error happened in.
public enum FileOperation: UInt8, Sendable, CaseIterable {
    case openDirectory = 1
    case readDirectory = 2
    case stat = 3
    /// The excludes file a work tree's git config names exists but cannot be read as a
    /// file (a directory: git refuses the work tree then). The error is on the work tree's
    /// top directory (no name); its listing is complete.
    case readExcludesFile = 4

    public var name: String {
        switch self {
        case .openDirectory: "opendir"
        case .readDirectory: "readdir"
        case .stat: "stat"
        case .readExcludesFile: "read-excludes-file"
        }
    }
}

/// Totals a run reports in `JobCompleted` and in the runs table.
public struct RunCounts: Sendable, Hashable {
    public var directories: UInt64 = 0
    public var files: UInt64 = 0
    public var symlinks: UInt64 = 0
    public var others: UInt64 = 0
    /// Sum of `st_size` of the regular files seen.
    public var bytes: UInt64 = 0
    public var errors: UInt64 = 0
    public var created: UInt64 = 0
    public var updated: UInt64 = 0
    public var removed: UInt64 = 0
    public var moved: UInt64 = 0
    public init() {}

    public var entries: UInt64 { directories + files + symlinks + others }

    /// Counts one entry seen by the walker.
    public mutating func add(_ kind: EntryKind, size: UInt64) {
        switch kind {
        case .file: files += 1; bytes &+= size
        case .directory: directories += 1
        case .symlink: symlinks += 1
        case .other: others += 1
        }
    }
}

/// A typed fact appended to the log. The vocabulary is documented in Docs/EVENTS.md.
///
/// Entries are named by the id of the directory that holds them (`parent`, a `dirID`
/// from an earlier `entryCreated`) and their raw name bytes; the root directory's id is
/// given by `jobStarted`.
public enum Event: Sendable, Hashable {
    /// `rootMetadata`: the root directory's own stat (what du counts for the root itself);
    /// nil in runs written before schema 3.
    case jobStarted(root: [UInt8], rootDirID: UInt64, options: String, version: String, rootMetadata: EntryMetadata? = nil)
    case jobPaused(reason: String)
    case jobResumed
    case jobCompleted(RunCounts)
    case jobFailed(message: String)
    /// The job's state as of this event is stored in the snapshots table under this
    /// event's sequence: resume starts there instead of folding the whole run.
    case snapshotTaken(entries: UInt64)
    case directoryListed(dirID: UInt64, children: UInt64)
    /// `rule`: bytes, as the rules name it (a gitignore rule holds a path and a pattern).
    case pathRejected(parent: UInt64, name: [UInt8], rule: [UInt8])
    case entryCreated(parent: UInt64, name: [UInt8], EntryMetadata)
    case entryUpdated(parent: UInt64, name: [UInt8], old: EntryMetadata, new: EntryMetadata)
    case entryRemoved(parent: UInt64, name: [UInt8])
    case entryMoved(fromParent: UInt64, fromName: [UInt8], toParent: UInt64, toName: [UInt8], EntryMetadata)
    case nonCriticalError(parent: UInt64, name: [UInt8], errno: Int32, operation: FileOperation)

    public var type: EventType {
        switch self {
        case .jobStarted: .jobStarted
        case .jobPaused: .jobPaused
        case .jobResumed: .jobResumed
        case .jobCompleted: .jobCompleted
        case .jobFailed: .jobFailed
        case .snapshotTaken: .snapshotTaken
        case .directoryListed: .directoryListed
        case .pathRejected: .pathRejected
        case .entryCreated: .entryCreated
        case .entryUpdated: .entryUpdated
        case .entryRemoved: .entryRemoved
        case .entryMoved: .entryMoved
        case .nonCriticalError: .nonCriticalError
        }
    }
}

/// The type byte of a record. Values are part of the on-disk format: never renumber.
public enum EventType: UInt8, Sendable, CaseIterable {
    case jobStarted = 1
    case jobPaused = 2
    case jobResumed = 3
    case jobCompleted = 4
    case jobFailed = 5
    case snapshotTaken = 6
    case directoryListed = 10
    case pathRejected = 11
    case entryCreated = 20
    case entryUpdated = 21
    case entryRemoved = 22
    case entryMoved = 23
    case nonCriticalError = 30

    public var name: String {
        switch self {
        case .jobStarted: "JobStarted"
        case .jobPaused: "JobPaused"
        case .jobResumed: "JobResumed"
        case .jobCompleted: "JobCompleted"
        case .jobFailed: "JobFailed"
        case .snapshotTaken: "SnapshotTaken"
        case .directoryListed: "DirectoryListed"
        case .pathRejected: "PathRejected"
        case .entryCreated: "EntryCreated"
        case .entryUpdated: "EntryUpdated"
        case .entryRemoved: "EntryRemoved"
        case .entryMoved: "EntryMoved"
        case .nonCriticalError: "NonCriticalError"
        }
    }

    public init?(name: String) {
        guard let t = EventType.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else { return nil }
        self = t
    }
}

/// An event with its envelope: where it sits in the log, which run wrote it, and when.
public struct EventRecord: Sendable, Hashable {
    public var sequence: UInt64
    public var run: UInt32
    /// Wall-clock time in milliseconds since the Unix epoch.
    public var timeMs: Int64
    public var event: Event

    public init(sequence: UInt64, run: UInt32, timeMs: Int64, event: Event) {
        self.sequence = sequence; self.run = run; self.timeMs = timeMs; self.event = event
    }
}
