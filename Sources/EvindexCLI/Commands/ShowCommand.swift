import ArgumentParser
import EventStore
import Events
import History
import JSONFormat
import Projections
import Traversal

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "One run in detail: status, root, timing, events by type, errors, pauses and snapshots.",
        discussion: """
            Reads the run's row and its events: how many of each type, its non-critical
            errors grouped by error and operation (with the first path of each group),
            where it paused and resumed, and where its job state was snapshotted.

            Examples:
              evindex show 3
              evindex show 3 --json
            """
    )

    @Argument(help: ArgumentHelp("The run id (see `evindex runs`).", valueName: "run"))
    var runID: UInt32

    @Flag(name: .long, help: "One JSON object: the run's row, events_by_type, errors, pauses, resumes, snapshots.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let index = try ReadOnlyIndex(database)
        var out = Output()
        try index.read { snapshot in
            let run = try index.run(snapshot, id: runID)
            let facts: RunFacts
            do {
                facts = try RunFacts.read(snapshot, run: run, through: run.lastSequence)
            } catch let error as DecodeError {
                throw CommandFailure(message: "\(error) in \(database.directory)", exitCode: 1)
            }
            // Errors by kind: how many, and where the first was.
            var errors: [String: (count: Int, first: String)] = [:]
            var paths = PathResolver()
            for e in facts.errors {
                let key = "\(Errno(rawValue: e.errno).name) \(e.operation.name)"
                if errors[key] == nil {
                    let path = try paths.entry(snapshot, e.parent, e.name).map(displayPath) ?? "dir#\(e.parent)/\(displayPath(e.name))"
                    errors[key] = (0, path)
                }
                errors[key]!.count += 1
            }
            let byType = facts.eventsByType, options = facts.options, version = facts.version
            let pauses = facts.pauses, resumes = facts.resumes
            let snapshots = facts.snapshots.map(\.sequence), snapshotEntries = facts.snapshots.map(\.entries)
            let types = EventType.allCases.filter { byType[$0] != nil }
            if json {
                var o = JSONObject()
                runFields(&o, run)
                o.addRaw("events_by_type", "{" + types.map { "\"\($0.name)\":\(byType[$0]!)" }.joined(separator: ",") + "}")
                o.addRaw(
                    "error_groups",
                    "["
                        + errors.keys.sorted().map { key in
                            let parts = key.split(separator: " ")
                            return
                                "{\"error\":\"\(parts[0])\",\"operation\":\"\(parts[1])\",\"count\":\(errors[key]!.count),\"first_path\":\(jsonString(errors[key]!.first))}"
                        }.joined(separator: ",") + "]")
                o.addRaw("pauses", "[" + pauses.map(String.init).joined(separator: ",") + "]")
                o.addRaw("resumes", "[" + resumes.map(String.init).joined(separator: ",") + "]")
                o.addRaw("snapshots", "[" + snapshots.map(String.init).joined(separator: ",") + "]")
                o.addRaw("snapshot_entries", "[" + snapshotEntries.map(String.init).joined(separator: ",") + "]")
                o.add("options", options)
                o.add("version", version)
                out.line(o.json)
            } else {
                let seconds = run.endedMs > 0 ? format3(Double(run.endedMs - run.startedMs) / 1000) + " s" : "not ended"
                out.line("run \(run.id) of \(displayPath(run.root)): \(run.status.name)\(run.message.isEmpty ? "" : " (\(run.message))")")
                out.line("  started \(timestamp(seconds: run.startedMs / 1000)) UTC, \(seconds); events \(run.firstSequence)-\(run.lastSequence)")
                out.line("  evindex \(version.isEmpty ? "?" : version); options: \(options.isEmpty ? "(none)" : options)")
                let c = run.counts
                out.line(
                    "  \(counted(c.entries, "entry")) (\(counted(c.directories, "dir")), \(counted(c.files, "file")), \(counted(c.symlinks, "symlink")), \(c.others) other), \(humanSize(c.bytes))"
                )
                out.line("  \(c.created) created, \(c.updated) updated, \(c.removed) removed, \(c.moved) moved, \(counted(c.errors, "error"))")
                out.line("  events: " + types.map { "\($0.name) \(byType[$0]!)" }.joined(separator: ", "))
                for key in errors.keys.sorted() {
                    out.line("  error \(key): \(errors[key]!.count), first at \(errors[key]!.first)")
                }
                if !pauses.isEmpty { out.line("  paused at " + pauses.map(String.init).joined(separator: ", ")) }
                if !resumes.isEmpty { out.line("  resumed at " + resumes.map(String.init).joined(separator: ", ")) }
                if !snapshots.isEmpty {
                    out.line("  snapshots at " + zip(snapshots, snapshotEntries).map { "\($0) (\(counted($1, "entry")))" }.joined(separator: ", "))
                }
            }
        }
        out.flush()
    }
}
