import Events
import Projections

/// Which events `log` prints: a run, event types, a time range, and events naming a path
/// at or below a prefix (resolved through the index read now; a run's lifecycle events
/// match when its root and the prefix overlap).
public struct EventFilter {
    public var runID: UInt32?
    public var types: Set<EventType>?
    /// Absolute path bytes, no trailing slash.
    public var pathPrefix: [UInt8]?
    public var sinceMs: Int64?
    public var untilMs: Int64?
    private var runRoots: [UInt32: [UInt8]] = [:]

    public init(runID: UInt32?, types: Set<EventType>?, pathPrefix: [UInt8]?, sinceMs: Int64?, untilMs: Int64?) {
        self.runID = runID; self.types = types; self.pathPrefix = pathPrefix; self.sinceMs = sinceMs; self.untilMs = untilMs
    }

    public mutating func matches(_ r: EventRecord, _ snapshot: IndexSnapshot, _ paths: inout PathResolver) throws -> Bool {
        if let runID, r.run != runID { return false }
        if let types, !types.contains(r.event.type) { return false }
        if let sinceMs, r.timeMs < sinceMs { return false }
        if let untilMs, r.timeMs > untilMs { return false }
        guard let prefix = pathPrefix else { return true }
        func under(_ p: [UInt8]?) -> Bool { p.map { PathBytes.isSameOrBelow($0, prefix) } ?? false }
        switch r.event {
        case let .entryCreated(parent, name, _), let .entryUpdated(parent, name, _, _), let .entryRemoved(parent, name),
            let .pathRejected(parent, name, _), let .nonCriticalError(parent, name, _, _):
            return under(try paths.entry(snapshot, parent, name))
        case let .entryMoved(fromParent, fromName, toParent, toName, _):
            let source = try paths.entry(snapshot, fromParent, fromName), destination = try paths.entry(snapshot, toParent, toName)
            return under(source) || under(destination)
        case let .directoryListed(dirID, _):
            return under(try paths.directory(snapshot, dirID))
        case let .jobStarted(root, _, _, _, _):
            runRoots[r.run] = root
            return PathBytes.isSameOrBelow(root, prefix) || PathBytes.isSameOrBelow(prefix, root)
        case .jobPaused, .jobResumed, .jobCompleted, .jobFailed, .snapshotTaken:
            if runRoots[r.run] == nil, let run = try snapshot.run(r.run) { runRoots[r.run] = run.root }
            guard let root = runRoots[r.run] else { return false }
            return PathBytes.isSameOrBelow(root, prefix) || PathBytes.isSameOrBelow(prefix, root)
        }
    }
}

/// Turns (directory id, name) into paths, caching directory paths.
public struct PathResolver {
    /// False: resolve nothing (`export`, whose records must not depend on today's index).
    public var enabled = true
    private var cache: [UInt64: [UInt8]] = [:]
    private var scratch: [UInt8] = []

    public init(enabled: Bool = true) { self.enabled = enabled }

    /// Forgets the cached paths (a directory may have moved since).
    public mutating func forget() { cache.removeAll(keepingCapacity: true) }

    /// A directory's path: its parent's (cached too) and its name, so a log that names
    /// every directory decodes each directory's row once, not its whole chain of parents.
    public mutating func directory(_ snapshot: IndexSnapshot, _ id: UInt64) throws -> [UInt8]? {
        guard enabled else { return nil }
        if let p = cache[id] { return p }
        if cache.count > 500_000 { cache.removeAll() }
        var chain: [(id: UInt64, name: [UInt8])] = []
        var next = id
        var path: [UInt8]?
        while true {
            if let known = cache[next] { path = known; break }
            guard let row = try snapshot.directory(next) else { return nil }
            if row.parent == 0 {
                path = row.name  // a root's name is its absolute path
                cache[next] = row.name
                break
            }
            chain.append((next, row.name))
            next = row.parent
            if chain.count > 100_000 { return nil }  // a parent cycle: `verify` names it
        }
        guard var built = path else { return nil }
        for link in chain.reversed() {
            built = PathBytes.joined(built, link.name)
            cache[link.id] = built
        }
        return built
    }

    public mutating func entry(_ snapshot: IndexSnapshot, _ parent: UInt64, _ name: [UInt8]) throws -> [UInt8]? {
        guard let dir = try directory(snapshot, parent) else { return nil }
        return name.isEmpty ? dir : PathBytes.joined(dir, name)
    }

    /// Calls `body` with `entry`'s path, built in a buffer this resolver reuses (`log
    /// --json` names a million entries); does nothing when the directory is unknown.
    public mutating func withEntry(
        _ snapshot: IndexSnapshot, _ parent: UInt64, _ name: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard let dir = try directory(snapshot, parent) else { return }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: dir)
        if !name.isEmpty {
            if scratch.last != UInt8(ascii: "/") { scratch.append(UInt8(ascii: "/")) }
            scratch.append(contentsOf: name)
        }
        try scratch.withUnsafeBytes(body)
    }
}
