import Events
import Projections

/// The directory-size view as it was at a run's stop, rebuilt from the directory-size
/// history (`IndexSnapshot.directories(asOf:)`) as a tree: no fold of the log.
///
/// Rule: a directory's row then names its parent and its name then, so the tree then is
/// its rows linked by parent, children in name (byte) order as listings keep them; a path
/// is found from the longest root above it, one directory per component. What it answers
/// equals the directory-size view of `replay --to` that stop.
public struct PastDirectories {
    public let rows: [UInt64: DirectoryRecord]
    private var children: [UInt64: [UInt64]] = [:]
    private var roots: [UInt64] = []

    public init(_ snapshot: IndexSnapshot, at epoch: SizeEpoch) throws {
        rows = try snapshot.directories(asOf: epoch)
        for (id, row) in rows {
            if row.parent == 0 { roots.append(id) } else { children[row.parent, default: []].append(id) }
        }
        for key in children.keys { children[key]!.sort { rows[$0]!.name.lexicographicallyPrecedes(rows[$1]!.name) } }
    }

    /// The directory at absolute `path` then; nil when no directory was there.
    public func locate(_ path: [UInt8]) -> UInt64? {
        guard let root = roots.filter({ PathBytes.isSameOrBelow(path, rows[$0]!.name) }).max(by: { rows[$0]!.name.count < rows[$1]!.name.count })
        else { return nil }
        var id = root
        for component in path[rows[root]!.name.count...].split(separator: UInt8(ascii: "/")) {
            guard let child = children[id]?.first(where: { rows[$0]!.name.elementsEqual(component) }) else { return nil }
            id = child
        }
        return id
    }

    /// `id` (at `path`) and the directories below it within `depth` levels, depth first,
    /// children in name order.
    public func forEach(from id: UInt64, path: [UInt8], depth: Int, _ body: ([UInt8], UInt64, DirectoryRecord) -> Void) {
        body(path, id, rows[id]!)
        guard depth > 0 else { return }
        for child in children[id] ?? [] {
            forEach(from: child, path: PathBytes.joined(path, rows[child]!.name), depth: depth - 1, body)
        }
    }
}
