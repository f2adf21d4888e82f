import EventStore
import Events
internal import LMDB
import Projections

/// What differs between two runs besides their entries: options (rules), non-critical
/// errors, rejections, and where the two streams first part.
public struct RunComparison {
    /// A non-critical error, by path relative to the root.
    public struct ErrorKey: Hashable, Sendable {
        public var path: [UInt8]
        public var errno: Int32
        public var operation: FileOperation
    }

    /// A path rejected by a rule in one run and not (or by another rule) in the other.
    public struct RejectionDifference: Sendable {
        public var path: [UInt8]
        /// The rule that rejected it in A, in B (nil: not rejected there).
        public var ruleA: [UInt8]?
        public var ruleB: [UInt8]?
        /// The path is in the other run's index.
        public var indexedInA: Bool
        public var indexedInB: Bool
    }

    /// The first divergence: the shallowest directory whose listing differs, and the
    /// first event of each run that concerns it.
    public struct Divergence: Sendable {
        public var path: [UInt8]
        public var eventA: EventRecord?
        public var eventB: EventRecord?
    }

    public var errorsOnlyInA: [ErrorKey] = []
    public var errorsOnlyInB: [ErrorKey] = []
    public var rejections: [RejectionDifference] = []
    /// Directories each run could not open or read (whether or not the other could).
    public var unreadableA: Set<[UInt8]> = []
    public var unreadableB: Set<[UInt8]> = []

    public var isEmpty: Bool { errorsOnlyInA.isEmpty && errorsOnlyInB.isEmpty && rejections.isEmpty }

    /// Errors that name a path below the root are keyed by it; others by the dir id.
    static func errorKeys(_ side: DiffSide) throws -> [ErrorKey: UInt64] {
        var keys: [ErrorKey: UInt64] = [:]
        for e in side.facts.errors {
            let path =
                try side.relativePath(parent: e.parent, name: e.name)
                ?? Array("dir#\(e.parent)/".utf8) + e.name
            let key = ErrorKey(path: path, errno: e.errno, operation: e.operation)
            if keys[key] == nil { keys[key] = e.sequence }
        }
        return keys
    }

    /// The names rejected as of the run's last event, by path below its root: rejections
    /// are state (the rejections view), as entries are, so a rescan that re-rejects nothing
    /// new has the same rejections as the run before it.
    static func rejectionRules(_ side: DiffSide) throws -> [[UInt8]: [UInt8]] {
        var rows: [(UInt64, [UInt8], [UInt8])] = []
        try side.views.forEachRejection(side.txn) { parent, name, rule in
            rows.append((parent, Array(name), Array(rule)))
        }
        var rules: [[UInt8]: [UInt8]] = [:]
        for (parent, name, rule) in rows {
            guard let path = try side.relativePath(parent: parent, name: name) else { continue }
            rules[path] = rule
        }
        return rules
    }

    /// Compares the errors and rejections of the two runs.
    public static func compare(_ a: DiffSide, _ b: DiffSide) throws -> RunComparison {
        var result = RunComparison()
        let ea = try errorKeys(a), eb = try errorKeys(b)
        let order: (ErrorKey, ErrorKey) -> Bool = { x, y in
            x.path == y.path ? (x.operation.rawValue, x.errno) < (y.operation.rawValue, y.errno) : x.path.lexicographicallyPrecedes(y.path)
        }
        result.errorsOnlyInA = ea.keys.filter { eb[$0] == nil }.sorted(by: order)
        result.errorsOnlyInB = eb.keys.filter { ea[$0] == nil }.sorted(by: order)
        result.unreadableA = Set(ea.keys.filter { $0.operation != .stat }.map(\.path))
        result.unreadableB = Set(eb.keys.filter { $0.operation != .stat }.map(\.path))
        let ra = try rejectionRules(a), rb = try rejectionRules(b)
        for path in Set(ra.keys).union(rb.keys).sorted(by: { $0.lexicographicallyPrecedes($1) }) where ra[path] != rb[path] {
            result.rejections.append(
                RejectionDifference(
                    path: path, ruleA: ra[path], ruleB: rb[path],
                    indexedInA: try a.entry(path) != nil, indexedInB: try b.entry(path) != nil))
        }
        return result
    }

    /// The directories whose listing these differences concern, with their depth.
    public var divergingDirectories: [(path: [UInt8], depth: Int)] {
        var out: [(path: [UInt8], depth: Int)] = []
        func parentOf(_ p: [UInt8]) -> [UInt8] {
            guard let cut = p.lastIndex(of: UInt8(ascii: "/")) else { return [] }
            return Array(p[..<cut])
        }
        func depth(_ p: [UInt8]) -> Int { p.isEmpty ? 0 : p.split(separator: UInt8(ascii: "/")).count }
        for e in errorsOnlyInA + errorsOnlyInB where !e.path.starts(with: Array("dir#".utf8)) {
            // A directory that could not be opened or read is itself what diverges; a
            // failed stat is a gap in its parent's listing.
            let dir = e.operation == .stat ? parentOf(e.path) : e.path
            out.append((dir, depth(dir)))
        }
        for r in rejections { let dir = parentOf(r.path); out.append((dir, depth(dir))) }
        return out
    }

    /// The shallowest directory among `candidates` (ties: the first in path order), and
    /// the first event of each run that concerns it.
    public static func firstDivergence(_ candidates: [(path: [UInt8], depth: Int)], _ a: DiffSide, _ b: DiffSide) throws -> Divergence? {
        guard
            let best = candidates.min(by: { x, y in
                if x.depth != y.depth { return x.depth < y.depth }
                return x.path.split(separator: UInt8(ascii: "/")).map(Array.init)
                    .lexicographicallyPrecedes(y.path.split(separator: UInt8(ascii: "/")).map(Array.init)) {
                        $0.lexicographicallyPrecedes($1)
                    }
            })
        else { return nil }
        let la = try a.locateDirectory(best.path), lb = try b.locateDirectory(best.path)
        return Divergence(
            path: best.path,
            eventA: try a.facts.firstEvent(a.snapshot, dirID: la.dirID, parent: la.parent, name: la.name),
            eventB: try b.facts.firstEvent(b.snapshot, dirID: lb.dirID, parent: lb.parent, name: lb.name))
    }
}
