/// Which of the index's entries and totals may be older than the disk.
///
/// Rule: an entry is stale when the last listing of its directory, or of a directory
/// above it, met an error (the `incomplete` view: the directory could not be read or
/// opened, or a name in it could not be stat'ed); a directory's totals are stale when its
/// entries are, or when such a directory is below it. Motivation: a directory that became
/// unreadable keeps its old entries, since a failed read proves nothing was removed; `ls`,
/// `du`, `find` and `why` say so instead of presenting them as current.
public struct StaleListings {
    private let incomplete: Set<UInt64>
    /// The incomplete directories and every directory above one.
    private let holding: Set<UInt64>
    /// Answers already found by walking up: dir id → stale.
    private var known: [UInt64: Bool] = [:]

    /// Reads the incomplete listings of `snapshot`'s views (most often there are none,
    /// and every question is then answered without a read).
    public init(_ snapshot: IndexSnapshot) throws {
        incomplete = Set(try snapshot.incompleteListings())
        var holding: Set<UInt64> = []
        for id in incomplete {
            var at = id
            while at != 0, holding.insert(at).inserted {
                at = try snapshot.directory(at)?.parent ?? 0
            }
        }
        self.holding = holding
    }

    /// Whether nothing in the index is stale.
    public var isEmpty: Bool { incomplete.isEmpty }

    /// The incomplete directories, in id order.
    public var directories: [UInt64] { incomplete.sorted() }

    /// Whether the entries listed in directory `dirID` may be stale: its last listing, or
    /// that of a directory above it, met an error.
    public mutating func entriesAreStale(in dirID: UInt64, _ snapshot: IndexSnapshot) throws -> Bool {
        if incomplete.isEmpty { return false }
        var chain: [UInt64] = []
        var at = dirID
        var stale = false
        while at != 0 {
            if let answer = known[at] {
                stale = answer
                break
            }
            if incomplete.contains(at) {
                stale = true
                break
            }
            chain.append(at)
            at = try snapshot.directory(at)?.parent ?? 0
        }
        for id in chain { known[id] = stale }
        return stale
    }

    /// Whether directory `dirID`'s totals may be stale: its entries are, or a directory
    /// below it has an incomplete listing.
    public mutating func totalsAreStale(of dirID: UInt64, _ snapshot: IndexSnapshot) throws -> Bool {
        if incomplete.isEmpty { return false }
        return try holding.contains(dirID) || entriesAreStale(in: dirID, snapshot)
    }
}
