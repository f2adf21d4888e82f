import EventStore
import Events
import History
import Projections
import Traversal

/// The fields of an entry's metadata; `dir_id` (the view's own key, which differs from one
/// database to another) only where events name directories by it.
public func metadataFields(_ o: inout JSONObject, _ prefix: String, _ m: EntryMetadata, withDirID: Bool = true) {
    let outer = o.keyPrefix
    o.keyPrefix = prefix
    defer { o.keyPrefix = outer }
    o.add("kind", m.kind.name)
    o.add("size", m.size)
    o.add("inode", m.inode)
    o.add("dev", m.device)
    o.add("mode", m.mode)
    o.add("mtime_ns", m.mtimeNs)
    o.add("ctime_ns", m.ctimeNs)
    o.add("btime_ns", m.btimeNs)
    if m.hasOwnership {
        o.add("blocks", m.blocks)
        o.add("nlink", m.nlink)
        o.add("uid", m.uid)
        o.add("gid", m.gid)
    }
    if withDirID && m.kind == .directory { o.add("dir_id", m.dirID) }
}

/// A run's row as JSON fields (`runs --json`, `show --json`).
public func runFields(_ o: inout JSONObject, _ r: RunRecord) {
    o.add("run", r.id)
    o.addPath("root", r.root)
    o.add("status", r.status.name)
    o.add("first_seq", r.firstSequence)
    o.add("last_seq", r.lastSequence)
    o.add("started_ms", r.startedMs)
    o.add("ended_ms", r.endedMs)
    countsFields(&o, r.counts)
    if !r.message.isEmpty { o.add("message", r.message) }
}

public func countsFields(_ o: inout JSONObject, _ c: RunCounts) {
    o.add("entries", c.entries)
    o.add("dirs", c.directories)
    o.add("files", c.files)
    o.add("symlinks", c.symlinks)
    o.add("others", c.others)
    o.add("bytes", c.bytes)
    o.add("errors", c.errors)
    o.add("created", c.created)
    o.add("updated", c.updated)
    o.add("removed", c.removed)
    o.add("moved", c.moved)
}

/// The keys of an entry an event names: `parent`, `name`, `path`, or a move's source's.
private enum EntryKeys {
    case destination, source

    var parent: StaticString { self == .destination ? "parent" : "from_parent" }
    var name: StaticString { self == .destination ? "name" : "from_name" }
    var path: StaticString { self == .destination ? "path" : "from" }
}

private func entryFields(
    _ o: inout JSONObject, _ keys: EntryKeys, _ parent: UInt64, _ name: [UInt8],
    _ snapshot: IndexSnapshot?, _ paths: inout PathResolver
) throws {
    o.add(keys.parent, parent)
    o.addPath(keys.name, name)
    if let snapshot { try paths.withEntry(snapshot, parent, name) { o.addPath(keys.path, $0) } }
}

/// An event as `log --json` prints it; its paths resolved through `snapshot` (none without
/// one: an export's records must not depend on today's index).
public func eventJSON(_ r: EventRecord, _ snapshot: IndexSnapshot?, _ paths: inout PathResolver) throws -> String {
    var o = JSONObject()
    try eventFields(&o, r, snapshot, &paths)
    return o.json
}

/// `eventJSON`'s fields, added to `o` (a writer's reused object).
public func eventFields(_ o: inout JSONObject, _ r: EventRecord, _ snapshot: IndexSnapshot?, _ paths: inout PathResolver) throws {
    o.add("seq", r.sequence)
    o.add("run", r.run)
    o.add("time_ms", r.timeMs)
    o.add("type", r.event.type.name)
    switch r.event {
    case let .jobStarted(root, rootDirID, options, version, rootMetadata):
        o.addPath("root", root); o.add("root_dir_id", rootDirID); o.add("options", options); o.add("version", version)
        if let rootMetadata { metadataFields(&o, "root_", rootMetadata, withDirID: false) }
    case let .jobPaused(reason):
        o.add("reason", reason)
    case .jobResumed:
        break
    case let .jobCompleted(c):
        countsFields(&o, c)
    case let .jobFailed(message):
        o.add("message", message)
    case let .snapshotTaken(entries):
        o.add("entries", entries)
    case let .directoryListed(dirID, children):
        o.add("dir_id", dirID); o.add("children", children)
        if let snapshot, let p = try paths.directory(snapshot, dirID) { o.addPath("path", p) }
    case let .pathRejected(parent, name, rule):
        try entryFields(&o, .destination, parent, name, snapshot, &paths); o.addPath("rule", rule)
    case let .entryCreated(parent, name, m):
        try entryFields(&o, .destination, parent, name, snapshot, &paths); metadataFields(&o, "", m)
    case let .entryUpdated(parent, name, old, new):
        try entryFields(&o, .destination, parent, name, snapshot, &paths)
        o.addRaw("changed", "[" + changedFields(old, new).map { "\"\($0)\"" }.joined(separator: ",") + "]")
        metadataFields(&o, "old_", old); metadataFields(&o, "", new)
    case let .entryRemoved(parent, name):
        try entryFields(&o, .destination, parent, name, snapshot, &paths)
    case let .entryMoved(fromParent, fromName, toParent, toName, m):
        try entryFields(&o, .source, fromParent, fromName, snapshot, &paths)
        try entryFields(&o, .destination, toParent, toName, snapshot, &paths)
        metadataFields(&o, "", m)
    case let .nonCriticalError(parent, name, errno, operation):
        try entryFields(&o, .destination, parent, name, snapshot, &paths)
        o.add("errno", errno); o.add("error", Errno(rawValue: errno).name); o.add("operation", operation.name)
    }
}

/// The names of the fields an update changed, in a fixed order.
public func changedFields(_ old: EntryMetadata, _ new: EntryMetadata) -> [String] {
    var f: [String] = []
    if old.kind != new.kind { f.append("kind") }
    if old.inode != new.inode { f.append("inode") }
    if old.device != new.device { f.append("dev") }
    if old.mode != new.mode { f.append("mode") }
    if old.size != new.size { f.append("size") }
    if old.mtimeNs != new.mtimeNs { f.append("mtime_ns") }
    if old.ctimeNs != new.ctimeNs { f.append("ctime_ns") }
    if old.btimeNs != new.btimeNs { f.append("btime_ns") }
    if old.blocks != new.blocks { f.append("blocks") }
    if old.nlink != new.nlink { f.append("nlink") }
    if old.uid != new.uid { f.append("uid") }
    if old.gid != new.gid { f.append("gid") }
    return f
}
