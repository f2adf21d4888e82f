import ArgumentParser
import EventStore
import Events
import Projections

struct WhyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "why",
        abstract: "Say why a path is or is not in the index, from the log.",
        discussion: """
            Follows PATH down from its indexed root. It is indexed; or it (or a directory
            above it) was rejected by a rule, named as PathRejected recorded it (for a
            .gitignore pattern: the file, line and pattern); or a directory above it was not
            entered (maximum depth, another filesystem); or it could not be read; or it was
            not there when its directory was last listed. The event that recorded the answer
            is named with its run and sequence number. Reads the index, never the disk.

            Exit status: 0 when PATH is indexed, 1 when it is not, 2 on bad input.

            Examples:
              evindex why ~/code/app/node_modules
              evindex why ~/code/app/debug.log --json
            """
    )

    @Argument(help: ArgumentHelp("The path to explain.", valueName: "path"))
    var path: String

    @Flag(name: .long, help: "One JSON object: path, indexed, reason, rule, at (the path the answer concerns), run, seq, event.")
    var json = false

    @OptionGroup var database: DatabaseOption

    struct Answer {
        var indexed: Bool
        var reason: String
        var rule: String?
        /// The path the answer is about: PATH, or the directory above it that decides.
        var at: [UInt8]
        var parent: UInt64 = 0
        var name: [UInt8] = []
        var event: EventRecord?
    }

    func run() throws {
        let index = try ReadOnlyIndex(database)
        let target = absolutePath(rawArgument(path))
        var answer = try index.read { snapshot -> Answer in
            var a = try explain(snapshot, index, target)
            if a.parent != 0 {
                // The event that made the answer true: a rejection for a rejection, an
                // entry event for an entry; the removal of a since-rejected entry is not it.
                let kinds: Set<EventType> = a.rule != nil ? [.pathRejected]
                    : a.indexed || a.at != target ? [.entryCreated, .entryUpdated, .entryMoved]
                    : [.entryRemoved, .nonCriticalError, .entryMoved]
                a.event = try lastEvent(snapshot, index.log, parent: a.parent, name: a.name, kinds: kinds)
            }
            return a
        }
        if answer.at.isEmpty { answer.at = target }
        var out = Output()
        if json {
            var o = JSONObject()
            o.addPath("path", target)
            o.add("indexed", answer.indexed)
            o.add("reason", answer.reason)
            if let rule = answer.rule { o.add("rule", rule) }
            o.addPath("at", answer.at)
            if let e = answer.event {
                o.add("run", e.run); o.add("seq", e.sequence); o.add("event", e.event.type.name)
            }
            out.line(o.json)
        } else {
            var line = "\(displayPath(target)): \(answer.reason)"
            if let e = answer.event { line += " (\(e.event.type.name), run \(e.run), seq \(e.sequence))" }
            out.line(line)
        }
        out.flush()
        if !answer.indexed { throw ExitCode(1) }
    }

    private func explain(_ snapshot: IndexSnapshot, _ index: ReadOnlyIndex, _ target: [UInt8]) throws -> Answer {
        let slash = UInt8(ascii: "/")
        guard let root = try snapshot.root(containing: target) else {
            throw CommandFailure(message: "\(displayPath(target)) is not under any indexed root (indexed roots: \(try index.rootList(snapshot)))")
        }
        var dirID = root.dirID
        var here = root.path
        let components = target[root.path.count...].split(separator: slash).map(Array.init)
        if components.isEmpty { return Answer(indexed: true, reason: "indexed: an indexed root", at: here) }
        for (i, name) in components.enumerated() {
            let isLast = i == components.count - 1
            let parentPath = here
            here = joinPath(here, name.withUnsafeBytes { $0 })
            if let m = try snapshot.entry(parent: dirID, name: name) {
                if isLast {
                    return Answer(indexed: true, reason: "indexed: \(m.kind.name), \(m.size) bytes", at: here, parent: dirID, name: name)
                }
                guard m.kind == .directory else {
                    return Answer(indexed: false, reason: "not indexed: \(displayPath(here)) is a \(m.kind.name), not a directory",
                                  at: here, parent: dirID, name: name)
                }
                guard m.dirID != 0 else {
                    return Answer(indexed: false, reason: "not indexed: \(displayPath(here)) is indexed but was not entered "
                                  + "(it is at the run's maximum depth, or on another filesystem)", at: here, parent: dirID, name: name)
                }
                dirID = m.dirID
                continue
            }
            if let rule = try snapshot.rejection(parent: dirID, name: name) {
                let reason = isLast ? "not indexed: rejected by \(rule)"
                    : "not indexed: \(displayPath(here)) above it was rejected by \(rule); a rejected directory is not entered"
                return Answer(indexed: false, reason: reason, rule: rule, at: here, parent: dirID, name: name)
            }
            if try snapshot.isListingIncomplete(dirID) {
                return Answer(indexed: false, reason: "not indexed: the last listing of \(displayPath(parentPath)) met errors "
                              + "and does not have it (see `evindex log --type NonCriticalError`)", at: here, parent: dirID, name: name)
            }
            return Answer(indexed: false, reason: "not indexed: \(displayPath(parentPath)) had no entry \(displayPath(name)) when last listed",
                          at: here, parent: dirID, name: name)
        }
        return Answer(indexed: true, reason: "indexed", at: here)
    }

    /// The last event about the name `name` in directory `parent`.
    private func lastEvent(_ snapshot: IndexSnapshot, _ log: EventLog, parent: UInt64, name: [UInt8], kinds: Set<EventType>) throws -> EventRecord? {
        var found: EventRecord?
        try snapshot.forEachRecord { record in
            guard kinds.contains(record.event.type) else { return true }
            switch record.event {
            case let .entryCreated(p, n, _), let .entryUpdated(p, n, _, _), let .entryRemoved(p, n),
                 let .pathRejected(p, n, _), let .nonCriticalError(p, n, _, _):
                if p == parent && n == name { found = record }
            case let .entryMoved(_, _, p, n, _):
                if p == parent && n == name { found = record }
            default:
                break
            }
            return true
        }
        return found
    }
}
