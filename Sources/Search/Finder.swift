import Events
import Projections

/// Walks the index below a directory and hands out the entries a `FindQuery` admits.
///
/// Rule: a directory's children in name (byte) order, then each child directory's subtree
/// in the same order, as `ls -R` lists them; the path is built in one buffer as the walk
/// goes down and cut back as it returns, so an entry costs no allocation. A query the name
/// index can narrow (`NameIndexSearch`) reads only the listings of directories holding a
/// proposed name, and hands its entries out in the same order. Each entry comes with
/// whether it is stale (`StaleListings`).
/// Motivation: `find` reads every entry of a million-entry index to answer one question;
/// per-entry strings would cost more than the reading.
public struct Finder {
    public let query: FindQuery
    private var path: [UInt8] = []
    private var scratch: [UInt8] = []
    private var stale: StaleListings?

    public init(query: FindQuery) {
        self.query = query
        path.reserveCapacity(4096)
        scratch.reserveCapacity(256)
    }

    /// Calls `body` with each matching entry strictly below the directory `dirID` at `root`:
    /// its path (valid only inside `body`), metadata and whether it may be older than the
    /// disk, until `body` returns false. Returns false when `body` stopped the walk.
    public mutating func find(
        _ snapshot: IndexSnapshot, below dirID: UInt64, at root: [UInt8],
        _ body: (UnsafeRawBufferPointer, EntryMetadata, _ stale: Bool) throws -> Bool
    ) throws -> Bool {
        stale = try StaleListings(snapshot)
        path.removeAll(keepingCapacity: true)
        path.append(contentsOf: root)
        if path.last == UInt8(ascii: "/") { path.removeLast() }
        if snapshot.hasNameIndex, var search = NameIndexSearch(query) {
            try snapshot.forEachNameChunk {
                try search.scan($0); return true
            }
            return try emit(search, snapshot, below: dirID, body)
        }
        return try walk(snapshot, dirID, depth: 1, body)
    }

    /// Hands out the entries the name index proposed that are below `top` and pass the
    /// query, in the walk's order: directories sorted by their path from `top`, each one's
    /// children in listing order.
    private mutating func emit(
        _ search: NameIndexSearch, _ snapshot: IndexSnapshot, below top: UInt64,
        _ body: (UnsafeRawBufferPointer, EntryMetadata, Bool) throws -> Bool
    ) throws -> Bool {
        var ancestry = Ancestry(below: top)
        var placed: [(key: [UInt8], directory: Int)] = []
        for (i, d) in search.directories.enumerated() {
            guard let place = try ancestry.place(of: d.dirID, snapshot) else { continue }
            if let maxDepth = query.maxDepth, place.depth + 1 > maxDepth { continue }
            placed.append((place.key, i))
        }
        placed.sort { $0.key.lexicographicallyPrecedes($1.key) }
        let base = path.count
        for (key, i) in placed {
            let d = search.directories[i]
            path.removeSubrange(base...)
            for b in key { path.append(b == 0 ? UInt8(ascii: "/") : b) }
            let end = path.count
            let isStale = try stale!.entriesAreStale(in: d.dirID, snapshot)
            var index: Int32 = 0, next = d.first
            var going = true
            try snapshot.forEachChild(of: d.dirID) { name, m in
                defer { index += 1 }
                guard index == search.children[next] else { return true }
                next += 1
                path.append(UInt8(ascii: "/"))
                path.append(contentsOf: name)
                if path.withUnsafeBytes({ matches(path: $0, nameStart: end + 1, m) }) {
                    going = try path.withUnsafeBytes { try body($0, m, isStale) }
                }
                path.removeSubrange(end...)
                return going && next < d.first + d.count
            }
            if !going { return false }
        }
        return true
    }

    /// Whether the entry at `path` (its name the last component) passes the query at `depth`.
    public mutating func matches(path entryPath: UnsafeRawBufferPointer, nameStart: Int, _ m: EntryMetadata) -> Bool {
        guard query.admits(m) else { return false }
        let name = UnsafeRawBufferPointer(rebasing: entryPath[nameStart...])
        guard query.hasExtension(name) else { return false }
        guard let pattern = query.pattern else { return true }
        return pattern.matches(query.fullPath ? entryPath : name, scratch: &scratch)
    }

    private mutating func walk(
        _ snapshot: IndexSnapshot, _ dirID: UInt64, depth: Int,
        _ body: (UnsafeRawBufferPointer, EntryMetadata, Bool) throws -> Bool
    ) throws -> Bool {
        let base = path.count
        let isStale = try stale!.entriesAreStale(in: dirID, snapshot)
        var subdirectories: [(name: [UInt8], dirID: UInt64)] = []
        let descend = query.maxDepth.map { depth < $0 } ?? true
        var going = true
        try snapshot.forEachChild(of: dirID) { name, m in
            path.append(UInt8(ascii: "/"))
            path.append(contentsOf: name)
            let matched = path.withUnsafeBytes { p in matches(path: p, nameStart: base + 1, m) }
            if matched { going = try path.withUnsafeBytes { try body($0, m, isStale) } }
            path.removeSubrange(base...)
            if descend && m.kind == .directory && m.dirID != 0 { subdirectories.append((Array(name), m.dirID)) }
            return going
        }
        guard going else { return false }
        for sub in subdirectories {
            path.append(UInt8(ascii: "/"))
            path.append(contentsOf: sub.name)
            let goOn = try walk(snapshot, sub.dirID, depth: depth + 1, body)
            path.removeSubrange(base...)
            if !goOn { return false }
        }
        return true
    }
}
