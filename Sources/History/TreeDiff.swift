import EventStore
import Events
internal import LMDB
import Projections

/// The metadata fields `diff` compares.
public struct MetadataFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let kind = MetadataFields(rawValue: 1 << 0)
    public static let mode = MetadataFields(rawValue: 1 << 1)
    public static let inode = MetadataFields(rawValue: 1 << 2)
    public static let device = MetadataFields(rawValue: 1 << 3)
    public static let size = MetadataFields(rawValue: 1 << 4)
    public static let mtime = MetadataFields(rawValue: 1 << 5)
    public static let ctime = MetadataFields(rawValue: 1 << 6)
    public static let btime = MetadataFields(rawValue: 1 << 7)

    public static let all: MetadataFields = [.kind, .mode, .inode, .device, .size, .mtime, .ctime, .btime]
    /// What `diff` compares unless told otherwise: not `ctime_ns` (any chmod, link or
    /// rename of the entry moves it, and it cannot be set back) and not `dev` (the number
    /// of the filesystem, not of the entry: it changes across reboots and machines).
    public static let standard: MetadataFields = [.kind, .mode, .inode, .size, .mtime, .btime]

    /// The names used in output and in `--ignore`, in output order.
    public static let names: [(String, MetadataFields)] = [
        ("kind", .kind), ("inode", .inode), ("dev", .device), ("mode", .mode), ("size", .size),
        ("mtime_ns", .mtime), ("ctime_ns", .ctime), ("btime_ns", .btime),
    ]

    /// The names of the compared fields in which `a` and `b` differ.
    public func differences(_ a: EntryMetadata, _ b: EntryMetadata) -> [String] {
        var out: [String] = []
        for (name, field) in Self.names where contains(field) {
            let differs: Bool
            switch field {
            case .kind: differs = a.kind != b.kind
            case .inode: differs = a.inode != b.inode
            case .device: differs = a.device != b.device
            case .mode: differs = a.mode != b.mode
            case .size: differs = a.size != b.size
            case .mtime: differs = a.mtimeNs != b.mtimeNs
            case .ctime: differs = a.ctimeNs != b.ctimeNs
            default: differs = a.btimeNs != b.btimeNs
            }
            if differs { out.append(name) }
        }
        return out
    }
}

/// One side of a comparison: the index a run learned, read in one transaction.
public struct DiffSide {
    /// The index the run learned, and its log.
    public let snapshot: IndexSnapshot
    public let facts: RunFacts
    /// The absolute path of the run's root as the views name it.
    public let rootPath: [UInt8]

    public var views: Views { snapshot.views }
    var txn: Transaction { snapshot.transaction }

    public init(_ snapshot: IndexSnapshot, facts: RunFacts) throws {
        self.snapshot = snapshot; self.facts = facts
        rootPath = try snapshot.path(of: facts.rootDirID) ?? facts.root
    }

    /// The path of `name` in directory `parent`, relative to the root; nil when the
    /// directory is not below the root in these views.
    func relativePath(parent: UInt64, name: [UInt8]) throws -> [UInt8]? {
        guard let dir = try views.path(txn, of: parent) else { return nil }
        guard PathBytes.isSameOrBelow(dir, rootPath) else { return nil }
        var rel = Array(dir[rootPath.count...])
        if rel.first == UInt8(ascii: "/") { rel.removeFirst() }
        if name.isEmpty { return rel }
        return rel.isEmpty ? name : rel + [UInt8(ascii: "/")] + name
    }

    /// The directory at a relative path: its dir id, its parent's id and its name.
    func locateDirectory(_ relative: [UInt8]) throws -> (dirID: UInt64?, parent: UInt64?, name: [UInt8]) {
        var id: UInt64? = facts.rootDirID
        var parent: UInt64?
        var name: [UInt8] = []
        for component in relative.split(separator: UInt8(ascii: "/")) {
            parent = id
            name = Array(component)
            guard let p = id, let m = try views.entry(txn, parent: p, name: name), m.kind == .directory, m.dirID != 0 else {
                id = nil
                continue
            }
            id = m.dirID
        }
        return (id, parent, name)
    }

    /// The metadata at a relative path, if indexed.
    func entry(_ relative: [UInt8]) throws -> EntryMetadata? {
        let parts = relative.split(separator: UInt8(ascii: "/"))
        guard let last = parts.last else { return nil }
        var id = facts.rootDirID
        for component in parts.dropLast() {
            guard let m = try views.entry(txn, parent: id, name: Array(component)), m.kind == .directory, m.dirID != 0 else { return nil }
            id = m.dirID
        }
        return try views.entry(txn, parent: id, name: Array(last))
    }
}

/// How an entry differs between the two sides.
public struct EntryDifference: Sendable {
    public enum Kind: String, Sendable {
        case onlyInA = "only_in_a"
        case onlyInB = "only_in_b"
        case changed
    }

    public var kind: Kind
    /// Relative to the root, without a leading slash.
    public var path: [UInt8]
    public var a: EntryMetadata?
    public var b: EntryMetadata?
    /// For `changed`: the compared fields that differ.
    public var fields: [String] = []
    /// A directory present on one side only (or a directory on one side and not on the
    /// other): what lies below it on that side.
    public var subtree: SubtreeSize?
    /// An entry inside such a subtree (listed only when asked).
    public var insideSubtree = false
    /// The whole listing of directory `path` is on one side only: the other side could
    /// not read it (an `opendir` or `readdir` error). `subtree` sizes what is missing.
    public var isListing = false
}

/// Entries and bytes below a directory.
public struct SubtreeSize: Sendable, Hashable {
    /// Entries below the directory (not counting it).
    public var entries: UInt64 = 0
    /// Sum of `st_size` of the regular files below.
    public var bytes: UInt64 = 0
}

/// The entries of two learned indexes compared by path, directory by directory.
public struct TreeDiff {
    public var fields: MetadataFields = .standard
    /// Report every entry inside a one-sided subtree too (JSON), not only its summary.
    public var listSubtreeContents = false
    /// Directories (relative paths) each side failed to open or read: when one of them is
    /// empty on that side, the other side's listing is summarized in one difference.
    public var unreadableA: Set<[UInt8]> = []
    public var unreadableB: Set<[UInt8]> = []

    public init(fields: MetadataFields = .standard, listSubtreeContents: Bool = false) {
        self.fields = fields; self.listSubtreeContents = listSubtreeContents
    }

    public struct Summary: Sendable {
        public var onlyInA: UInt64 = 0
        public var onlyInB: UInt64 = 0
        public var changed: UInt64 = 0
        /// Entries inside one-sided subtrees.
        public var insideSubtrees: UInt64 = 0
        /// Directories whose whole listing is on one side only (the other could not read it).
        public var missingListings: UInt64 = 0
        /// Directories whose listing differs, with their depth (the root is 0).
        public var divergingDirectories: [(path: [UInt8], depth: Int)] = []
        public var isEmpty: Bool { onlyInA == 0 && onlyInB == 0 && changed == 0 && missingListings == 0 }
    }

    private struct Child {
        var name: [UInt8]
        var metadata: EntryMetadata
    }

    private static func children(_ side: DiffSide, _ dirID: UInt64?) throws -> [Child] {
        guard let dirID else { return [] }
        var out: [Child] = []
        try side.views.forEachChild(side.txn, of: dirID) { name, m in
            out.append(Child(name: Array(name), metadata: m))
            return true
        }
        return out
    }

    private static func join(_ dir: [UInt8], _ name: [UInt8]) -> [UInt8] {
        dir.isEmpty ? name : dir + [UInt8(ascii: "/")] + name
    }

    private static func enteredID(_ m: EntryMetadata) -> UInt64? {
        m.kind == .directory && m.dirID != 0 ? m.dirID : nil
    }

    /// Compares the two trees below their roots, depth first in name order; calls
    /// `group` once per directory with differences among its children (its relative
    /// path, then the differences in name order).
    public func compare(
        _ a: DiffSide, _ b: DiffSide,
        group: ([UInt8], [EntryDifference]) throws -> Void
    ) throws -> Summary {
        var summary = Summary()
        var stack: [(UInt64?, UInt64?, [UInt8], Int)] = [(a.facts.rootDirID, b.facts.rootDirID, [], 0)]
        var visited = 0
        while let (aID, bID, dir, depth) = stack.popLast() {
            visited += 1
            if visited % 4096 == 0 {
                // Both views are read once through: keep resident memory flat.
                a.views.environment.releaseMappedPages()
                if b.views.environment !== a.views.environment { b.views.environment.releaseMappedPages() }
            }
            let left = try Self.children(a, aID), right = try Self.children(b, bID)
            var diffs: [EntryDifference] = []
            // A listing on one side only (the other could not be read): only possible when
            // one side is empty, so most directories skip this.
            let oneSidedListing =
                left.isEmpty != right.isEmpty
                ? [
                    (a, aID, EntryDifference.Kind.onlyInA, unreadableB, right.isEmpty, !left.isEmpty),
                    (b, bID, EntryDifference.Kind.onlyInB, unreadableA, left.isEmpty, !right.isEmpty),
                ] : []
            for (side, id, kind, unreadable, empty, full) in oneSidedListing
            where empty && full && unreadable.contains(dir) {
                var d = EntryDifference(kind: kind, path: dir)
                d.isListing = true
                d.subtree = try oneSided(side, id, dir, kind, &diffs, &summary)
                diffs.insert(d, at: 0)
                summary.missingListings += 1
                summary.divergingDirectories.append((dir, depth))
                try group(dir, diffs)
            }
            if !diffs.isEmpty { continue }
            var descend: [(UInt64?, UInt64?, [UInt8], Int)] = []
            var i = 0, j = 0
            while i < left.count || j < right.count {
                let order: Int
                if i == left.count {
                    order = 1
                } else if j == right.count {
                    order = -1
                } else {
                    order = left[i].name == right[j].name ? 0 : (left[i].name.lexicographicallyPrecedes(right[j].name) ? -1 : 1)
                }
                if order < 0 {
                    let c = left[i]; i += 1
                    var d = EntryDifference(kind: .onlyInA, path: Self.join(dir, c.name), a: c.metadata)
                    d.subtree = try oneSided(a, Self.enteredID(c.metadata), d.path, .onlyInA, &diffs, &summary)
                    summary.onlyInA += 1
                    diffs.insert(d, at: diffs.count - Int(listSubtreeContents ? (d.subtree?.entries ?? 0) : 0))
                } else if order > 0 {
                    let c = right[j]; j += 1
                    var d = EntryDifference(kind: .onlyInB, path: Self.join(dir, c.name), b: c.metadata)
                    d.subtree = try oneSided(b, Self.enteredID(c.metadata), d.path, .onlyInB, &diffs, &summary)
                    summary.onlyInB += 1
                    diffs.insert(d, at: diffs.count - Int(listSubtreeContents ? (d.subtree?.entries ?? 0) : 0))
                } else {
                    let x = left[i], y = right[j]; i += 1; j += 1
                    let changed = fields.differences(x.metadata, y.metadata)
                    let idA = Self.enteredID(x.metadata), idB = Self.enteredID(y.metadata)
                    // The path is built only for what is reported or entered.
                    guard idA != nil || idB != nil || !changed.isEmpty else { continue }
                    let path = Self.join(dir, x.name)
                    if idA != nil && idB != nil {
                        descend.append((idA, idB, path, depth + 1))
                        if !changed.isEmpty {
                            diffs.append(EntryDifference(kind: .changed, path: path, a: x.metadata, b: y.metadata, fields: changed))
                            summary.changed += 1
                        }
                    } else if idA != nil || idB != nil || !changed.isEmpty {
                        // A directory on one side only (kind changed, or not entered):
                        // what lies below it is one-sided too.
                        var d = EntryDifference(kind: .changed, path: path, a: x.metadata, b: y.metadata, fields: changed)
                        let mark = diffs.count
                        if let idA { d.subtree = try oneSided(a, idA, path, .onlyInA, &diffs, &summary) }
                        if let idB { d.subtree = try oneSided(b, idB, path, .onlyInB, &diffs, &summary) }
                        diffs.insert(d, at: mark)
                        summary.changed += 1
                    }
                }
            }
            if !diffs.isEmpty {
                summary.divergingDirectories.append((dir, depth))
                try group(dir, diffs)
            }
            stack.append(contentsOf: descend.reversed())
        }
        return summary
    }

    /// Sizes (and, when listing, the entries of) a subtree present on one side only.
    private func oneSided(
        _ side: DiffSide, _ dirID: UInt64?, _ path: [UInt8], _ kind: EntryDifference.Kind,
        _ diffs: inout [EntryDifference], _ summary: inout Summary
    ) throws -> SubtreeSize? {
        guard let dirID else { return nil }
        var size = SubtreeSize()
        var stack: [(UInt64, [UInt8])] = [(dirID, path)]
        var listed: [EntryDifference] = []
        while let (id, dir) = stack.popLast() {
            var subdirs: [(UInt64, [UInt8])] = []
            try side.views.forEachChild(side.txn, of: id) { name, m in
                size.entries += 1
                if m.kind == .file { size.bytes &+= m.size }
                let childPath = Self.join(dir, Array(name))
                if let sub = Self.enteredID(m) { subdirs.append((sub, childPath)) }
                if listSubtreeContents {
                    var d = EntryDifference(kind: kind, path: childPath)
                    if kind == .onlyInA { d.a = m } else { d.b = m }
                    d.insideSubtree = true
                    listed.append(d)
                }
                return true
            }
            stack.append(contentsOf: subdirs.reversed())
        }
        summary.insideSubtrees += size.entries
        diffs.append(contentsOf: listed)
        return size
    }
}
