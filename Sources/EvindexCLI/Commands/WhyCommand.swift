import ArgumentParser
import EventStore
import Events
import History
import JSONFormat
import Projections

struct WhyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "why",
        abstract: "Say why a path is or is not in the index, from the log.",
        discussion: """
            Follows PATH down from its indexed root. It is indexed; or it (or a directory
            above it) was rejected by a rule, named as PathRejected recorded it (for a
            .gitignore pattern: the file, line and pattern); or a directory above it was
            not entered (maximum depth, another filesystem); or it could not be read; or
            it was not there when its directory was last listed. The event that recorded
            the answer is named with its run and sequence number. Reads the index, never
            the disk.

            Exit status: 0 when PATH is indexed, 1 when it is not, 2 on bad input.

            Examples:
              evindex why ~/code/app/node_modules
              evindex why ~/code/app/debug.log --json
            """
    )

    @Argument(help: ArgumentHelp("The path to explain.", valueName: "path"))
    var path: String

    @Flag(
        name: .long,
        help: "One JSON object: path, indexed, reason, rule, at (the path the answer concerns), stale and stale_at, run, seq, event.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let index = try ReadOnlyIndex(database)
        let target = absolutePath(rawArgument(path))
        let answer = try index.read { snapshot -> Explanation in
            guard let answer = try Explanation.explain(snapshot, path: target) else {
                throw CommandFailure(message: "\(displayPath(target)) is not under any indexed root (indexed roots: \(try index.rootList(snapshot)))")
            }
            return answer
        }
        let reason = Self.sentence(answer, target: target)
        var out = Output()
        if json {
            var o = JSONObject()
            o.addPath("path", target)
            o.add("indexed", answer.isIndexed)
            o.add("reason", reason)
            if case let .rejected(rule) = answer.reason { o.addPath("rule", rule) }
            o.addPath("at", answer.at)
            if let staleAt = answer.staleAt {
                o.add("stale", true)
                o.addPath("stale_at", staleAt)
            }
            if let e = answer.event {
                o.add("run", e.run); o.add("seq", e.sequence); o.add("event", e.event.type.name)
            }
            out.line(o.json)
        } else {
            var line = "\(displayPath(target)): \(reason)"
            if let e = answer.event { line += " (\(e.event.type.name), run \(e.run), seq \(e.sequence))" }
            if let staleAt = answer.staleAt {
                line += "; stale: the last listing of \(displayPath(staleAt)) met an error, so this may be older than the disk"
                line += " (see `evindex log --type NonCriticalError`)"
            }
            out.line(line)
        }
        out.flush()
        if !answer.isIndexed { throw CommandFailure(message: "", exitCode: 1) }
    }

    /// The answer as the sentence `why` prints.
    static func sentence(_ answer: Explanation, target: [UInt8]) -> String {
        let at = answer.at
        let cut = at.lastIndex(of: UInt8(ascii: "/")) ?? 0
        let parent = cut == 0 ? [UInt8(ascii: "/")] : Array(at[..<cut]), name = Array(at[(cut + 1)...])
        switch answer.reason {
        case .root:
            return "indexed: an indexed root"
        case let .indexed(kind, size):
            return "indexed: \(kind.name), \(size) bytes"
        case let .notADirectory(kind):
            return "not indexed: \(displayPath(at)) is a \(kind.name), not a directory"
        case .notEntered:
            return "not indexed: \(displayPath(at)) is indexed but was not entered (it is at the run's maximum depth, or on another filesystem)"
        case let .rejected(bytes):
            let rule = displayPath(bytes)
            return at == target
                ? "not indexed: rejected by \(rule)"
                : "not indexed: \(displayPath(at)) above it was rejected by \(rule); a rejected directory is not entered"
        case .listingIncomplete:
            return
                "not indexed: the last listing of \(displayPath(parent)) met errors and does not have it (see `evindex log --type NonCriticalError`)"
        case .absent:
            return "not indexed: \(displayPath(parent)) had no entry \(displayPath(name)) when last listed"
        }
    }
}
