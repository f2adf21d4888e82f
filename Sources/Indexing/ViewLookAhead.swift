import Events
internal import LMDB
import Projections
import Traversal

/// A lister thread's look-ahead into the views: the names of a directory the walk has not
/// reached, when the `ChangeDetector` will trust them (unchanged since its last listing,
/// not racy, not incomplete), so the lister need not read them. Its own read transaction
/// holds a snapshot only during a look-up, so it neither pins old pages nor holds up a map
/// resize while the lister reads.
struct ViewLookAhead: IndexLookAhead {
    let views: Views
    let trust: DirectoryTrust
    let checkIncomplete: Bool
    let checkRejections: Bool
    private let reader: Transaction
    /// The children of the directory looked up last: its subdirectories come one after
    /// another, and a look-up by name in a stored listing reads the whole of it.
    private var parentChildren: (id: UInt64, children: Children)?

    init?(views: Views, trust: DirectoryTrust) {
        guard trust.trustsAny, let reader = try? views.environment.makeReader(),
            let incomplete = try? views.hasIncompleteListings(reader), let rejections = try? views.hasRejections(reader)
        else { return nil }
        reader.reset()
        self.views = views
        self.trust = trust
        self.checkIncomplete = incomplete
        self.checkRejections = rejections
        self.reader = reader
    }

    mutating func lookUp(parent: UInt64, name: UnsafeRawBufferPointer, stat: EntryStat) -> (id: UInt64, known: KnownListing?) {
        guard (try? reader.renew()) != nil else { return (0, nil) }
        defer { reader.reset() }
        do {
            // What ChangeDetector.directoryListed decides for the same row.
            if parentChildren?.id != parent { parentChildren = (parent, try views.children(reader, of: parent)) }
            guard let old = parentChildren!.children.find(name) else { return (0, nil) }
            let now = EntryMetadata(stat, dirID: old.dirID)
            guard DirectoryTrust.keepsID(old: old, now: now) else { return (0, nil) }
            guard trust.namesStand(old: old, now: now) else { return (old.dirID, nil) }
            if checkIncomplete, try views.isListingIncomplete(reader, old.dirID) { return (old.dirID, nil) }
            var names: [UInt8] = []
            try views.forEachChild(reader, of: old.dirID) { n, _ in
                names.append(contentsOf: n)
                names.append(0)
                return true
            }
            if checkRejections {
                try views.forEachRejection(reader, of: old.dirID) { n, _ in
                    names.append(contentsOf: n)
                    names.append(0)
                }
            }
            return (old.dirID, KnownListing(names: names))
        } catch {
            return (0, nil)
        }
    }
}
