import ArgumentParser
import EventStore
import Events
import JSONFormat
import Projections

struct RunsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List every run: status, root, events and counts.",
        discussion: """
            Examples:
              evindex runs
              evindex runs --json | jq 'select(.status == "failed")'
            """
    )

    @Flag(name: .long, help: "One JSON object per run: run, root, status, first_seq, last_seq, started_ms, ended_ms and counts.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let index = try ReadOnlyIndex(database)
        var out = Output()
        try index.read { snapshot in
            let runs = try snapshot.runs()
            if !json {
                out.line("RUN  STATUS     EVENTS           ENTRIES   CREATED   UPDATED   REMOVED     MOVED   ERRORS  STARTED              ROOT")
            }
            for r in runs {
                let c = r.counts
                if json {
                    var o = JSONObject()
                    runFields(&o, r)
                    out.line(o.json)
                } else {
                    func col(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(1, w - s.count)) }
                    func num(_ v: UInt64, _ w: Int) -> String { String(repeating: " ", count: max(0, w - String(v).count)) + String(v) + "  " }
                    out.line(
                        col(String(r.id), 5) + col(r.status.name, 11) + col("\(r.firstSequence)-\(r.lastSequence)", 15)
                            + num(c.entries, 9) + num(c.created, 8) + num(c.updated, 8) + num(c.removed, 8) + num(c.moved, 8) + num(c.errors, 7)
                            + col(timestamp(seconds: r.startedMs / 1000), 21) + displayPath(r.root))
                }
            }
        }
        out.flush()
    }
}
