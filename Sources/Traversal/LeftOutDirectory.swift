/// A directory the walk never indexes, wherever it meets it: the database's own.
///
/// Rule: an entry that is this directory (same device and inode) is rejected, as a rule
/// would reject it, whatever rules are in force (`why`: "rejected by the rule that leaves
/// out evindex's own database").
/// Motivation: `evindex run ~` with the default database (`~/.local/share/evindex`)
/// indexed the database as it wrote it, so a rescan of an unchanged home always found
/// `data.mdb` changed and wrote events about its own events.
public struct LeftOutDirectory: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    /// What `PathRejected` records as the rule, and `why` shows.
    public static let rule = "the rule that leaves out evindex's own database"

    public init(device: UInt64, inode: UInt64) {
        self.device = device; self.inode = inode
    }

    /// Moves the entry that is this directory, if any, from `entries` to `rejected`.
    func reject(from listing: inout DirectoryListing) {
        guard let i = listing.entries.firstIndex(where: { $0.stat.isDirectory && $0.stat.inode == inode && $0.stat.device == device })
        else { return }
        let entry = listing.entries.remove(at: i)
        listing.rejected.append(RejectedEntry(nameStart: entry.nameStart, nameLength: entry.nameLength, rule: Array(Self.rule.utf8)))
    }
}
