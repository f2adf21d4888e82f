import ArgumentParser
import EventStore
import Events
import History
import JSONFormat
import Projections
import Traversal

func eventLine(_ r: EventRecord, _ snapshot: IndexSnapshot, _ paths: inout PathResolver) throws -> String {
    func path(_ parent: UInt64, _ name: [UInt8]) throws -> String {
        if let p = try paths.entry(snapshot, parent, name) { return displayPath(p) }
        return "dir#\(parent)/" + displayPath(name)
    }
    let detail: String
    switch r.event {
    case let .jobStarted(root, _, options, version, _):
        detail = "\(displayPath(root)) (evindex \(version))" + (options.isEmpty ? "" : " rules \(describeRules(options))")
    case let .jobPaused(reason): detail = reason
    case .jobResumed: detail = ""
    case let .jobCompleted(c):
        detail =
            "\(counted(c.entries, "entry")), \(c.created) created, \(c.updated) updated, \(c.removed) removed, \(c.moved) moved, \(counted(c.errors, "error"))"
    case let .jobFailed(message): detail = message
    case let .snapshotTaken(entries): detail = "job state saved after \(counted(entries, "entry"))"
    case let .directoryListed(dirID, children):
        detail = (try paths.directory(snapshot, dirID).map(displayPath) ?? "dir#\(dirID)") + " (\(counted(children, "entry")))"
    case let .pathRejected(parent, name, rule): detail = "\(try path(parent, name)) by \(displayPath(rule))"
    case let .entryCreated(parent, name, m): detail = "\(try path(parent, name)) \(m.kind.name) \(m.size)"
    case let .entryUpdated(parent, name, old, new): detail = "\(try path(parent, name)) \(changedFields(old, new).joined(separator: ","))"
    case let .entryRemoved(parent, name): detail = try path(parent, name)
    case let .entryMoved(fromParent, fromName, toParent, toName, _): detail = "\(try path(fromParent, fromName)) -> \(try path(toParent, toName))"
    case let .nonCriticalError(parent, name, errno, operation):
        detail = "\(try path(parent, name)): \(operation.name): \(Errno(rawValue: errno).name) (\(Errno(rawValue: errno)))"
    }
    return "\(r.sequence)  run \(r.run)  \(timestamp(seconds: r.timeMs / 1000))  \(r.event.type.name)  \(detail)"
}
