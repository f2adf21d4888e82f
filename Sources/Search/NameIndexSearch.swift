internal import CLinux
import Events
import Projections
internal import Rules

#if canImport(Glibc)
    import Glibc
#endif

/// The names a query could match, found in the name index without reading a listing.
///
/// Rule: the index only proposes. A name is proposed when its folded form passes what can
/// be asked of a folded name: the pattern as a folded substring, an ASCII glob without
/// case, the extensions; the entry it names is then looked up in its directory's listing
/// and the whole query is asked of it there, exactly as the walk asks it. Folding maps
/// every exact match to a folded one, so nothing the walk would print is left out.
/// A query the index cannot narrow (no pattern and no extension, a regular expression,
/// a pattern with letters beyond ASCII, a glob that minds case) is walked instead.
/// Motivation: a query that matches a few names of a million reads the names alone, at
/// memory speed (`memmem` over each chunk), and decodes a listing only where a name matched.
struct NameIndexSearch {
    private enum PatternTest { case none, substring([UInt8]), glob([UInt8]) }

    private let pattern: PatternTest
    private let query: FindQuery
    /// The directories with proposed names, in id order: where their children's indexes
    /// (in listing order) are in `children`.
    private(set) var directories: [(dirID: UInt64, first: Int, count: Int)] = []
    private(set) var children: [Int32] = []
    private var chunkDirectories: [(dirID: UInt64, range: Range<Int>)] = []

    /// Nil when the index cannot narrow `query`.
    init?(_ query: FindQuery) {
        var test = PatternTest.none
        if let p = query.pattern, !query.fullPath, p.asciiOnly {
            switch p.syntax {
            case .substring where !p.bytes.isEmpty: test = .substring(p.bytes.map(NameIndexFormat.fold))
            case .glob where p.ignoresCase: test = .glob(p.bytes)
            default: break
            }
        }
        if case .none = test, query.extensions.isEmpty { return nil }
        pattern = test
        self.query = query
    }

    /// Proposes the names of `chunk`.
    mutating func scan(_ chunk: NameChunk) throws {
        let names = chunk.names
        guard let base = names.baseAddress, !names.isEmpty else { return }
        chunkDirectories.removeAll(keepingCapacity: true)
        if case let .substring(needle) = pattern {
            // memmem finds the candidates; the name around each is found from its NULs.
            var d = 0, counted = 0, countedAt = 0
            var from = 0
            while from < names.count {
                let found = needle.withUnsafeBytes { n in evindex_memmem(base + from, names.count - from, n.baseAddress!, n.count) }
                guard let found else { return }
                let at = base.distance(to: UnsafeRawPointer(found))
                if chunkDirectories.isEmpty { try chunk.forEachDirectory { chunkDirectories.append(($0, $1)) } }
                while at >= chunkDirectories[d].range.upperBound {
                    d += 1
                    counted = 0
                    countedAt = chunkDirectories[d].range.lowerBound
                }
                // The children before this name in its directory: the NULs before it.
                var start = at
                while start > countedAt && names[start - 1] != 0 { start -= 1 }
                var i = countedAt
                while i < start {
                    if names[i] == 0 { counted += 1 }
                    i += 1
                }
                countedAt = start
                let end = start + strlen(base.assumingMemoryBound(to: CChar.self) + start)
                if hasExtension(UnsafeRawBufferPointer(rebasing: names[start..<end])) {
                    propose(chunkDirectories[d].dirID, counted)
                }
                from = end + 1
            }
            return
        }
        try chunk.forEachDirectory { chunkDirectories.append(($0, $1)) }
        for (dirID, range) in chunkDirectories {
            var start = range.lowerBound, index: Int32 = 0
            while start < range.upperBound {
                let end = start + strlen(base.assumingMemoryBound(to: CChar.self) + start)
                let name = UnsafeRawBufferPointer(rebasing: names[start..<end])
                if hasExtension(name), matchesGlob(name) { propose(dirID, Int(index)) }
                index += 1
                start = end + 1
            }
        }
    }

    private mutating func propose(_ dirID: UInt64, _ child: Int) {
        if directories.last?.dirID != dirID { directories.append((dirID, children.count, 0)) }
        directories[directories.count - 1].count += 1
        children.append(Int32(child))
    }

    @inline(__always)
    private func matchesGlob(_ folded: UnsafeRawBufferPointer) -> Bool {
        guard case let .glob(glob) = pattern else { return true }
        return glob.withUnsafeBytes { Wildmatch.matches($0, folded, pathname: false) }
    }

    /// `FindQuery.hasExtension`, which folds ASCII itself: the same answer on a folded name.
    @inline(__always)
    private func hasExtension(_ folded: UnsafeRawBufferPointer) -> Bool { query.hasExtension(folded) }
}

/// Where directories are below one searched directory: the path between them and the
/// depth, looked up once per directory along the parent chain.
struct Ancestry {
    /// The path from the searched directory: NUL before each component, so that sorting
    /// these bytes puts directories in the order `ls -R` lists them (a directory before
    /// what is in it, siblings in name order).
    typealias Place = (key: [UInt8], depth: Int)

    private let top: UInt64
    private var known: [UInt64: Place?] = [:]

    init(below top: UInt64) { self.top = top }

    /// Where `dirID` is below the searched directory; nil when it is not below it.
    mutating func place(of dirID: UInt64, _ snapshot: IndexSnapshot) throws -> Place? {
        var chain: [(id: UInt64, name: [UInt8])] = []
        var id = dirID
        var found: Place?
        while true {
            if id == top { found = ([], 0); break }
            if id == 0 { break }
            if let place = known[id] { found = place; break }
            guard let row = try snapshot.directory(id) else { break }
            chain.append((id, row.name))
            id = row.parent
            if chain.count > 100_000 { throw ViewError.corrupt("directory \(dirID) has a parent cycle") }
        }
        for link in chain.reversed() {
            found = found.map { (key: $0.key + [0] + link.name, depth: $0.depth + 1) }
            known[link.id] = .some(found)
        }
        return found
    }
}
