/// Everything the walker learned reading one directory.
///
/// The names are kept back to back in one buffer, each followed by a NUL, and entries
/// point into it: one allocation per directory rather than one per name, and a name goes
/// to a system call (`openat`, `statx`) as it is, with no copy.
public struct DirectoryListing: Sendable {
    public var directoryID: UInt64
    /// The directory's own metadata (as its parent's listing saw it; `fstat` for the root).
    public var stat: EntryStat
    /// Names back to back, each followed by a NUL byte.
    public var names: [UInt8] = []
    /// Entries whose stat succeeded, in name order (bytes compared as unsigned, a name
    /// before any longer name it begins): the order of the views and of the events.
    public var entries: [ListedEntry] = []
    /// Entries that could not be read, and a failed `readdir` of the directory itself.
    public var errors: [WalkError] = []
    /// Entries the rules rejected (not in `entries`).
    public var rejected: [RejectedEntry] = []

    public init(directoryID: UInt64, stat: EntryStat) {
        self.directoryID = directoryID
        self.stat = stat
    }

    /// The id a listing read ahead (before the walk knew it) carries, and its errors too.
    mutating func setDirectoryID(_ id: UInt64) {
        directoryID = id
        for i in errors.indices { errors[i].directoryID = id }
    }
}

/// One entry of a listing: its name is `names[nameStart ..< nameStart + nameLength]`
/// (followed by a NUL so it can be handed to a syscall as is).
public struct ListedEntry: Sendable {
    public var nameStart: Int32
    public var nameLength: Int32
    public var stat: EntryStat
    /// For a directory the walker will descend into, the id its own listing carries; else
    /// 0. Set by the delegate.
    public var directoryID: UInt64
    /// A directory on the root's device (and not at the rules' maximum depth): the walk
    /// may enter it.
    public var canDescend: Bool
    /// The child-directory rules accept files inside this directory.
    public var filesAccepted = true
}

/// An entry the rules rejected: not indexed, and a directory is not entered.
public struct RejectedEntry: Sendable {
    public var nameStart: Int32
    public var nameLength: Int32
    /// The rule, as `PathRejected` records it.
    public var rule: [UInt8]
}

/// A directory's names known without reading it, and possibly their metadata.
public struct KnownListing: Sendable {
    /// Names, a NUL after each.
    public var names: [UInt8]
    /// The metadata of each name in order, when it need not be stat'ed again (a resumed
    /// run's already recorded directory); nil to stat every name. With stats, the names
    /// are in name order (as the view keeps them).
    public var stats: [EntryStat]?
    /// What this run recorded before it stopped: the listing must carry these names (and
    /// stats), not what a read ahead found.
    public var isRecorded: Bool

    public init(names: [UInt8], stats: [EntryStat]? = nil, isRecorded: Bool = false) {
        self.names = names
        self.stats = stats
        self.isRecorded = isRecorded || stats != nil
    }
}
