import ArgumentParser
import EventStore
import Events
import Indexing
import JSONFormat
import Projections

struct DuCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "du",
        abstract: "Directory sizes from the index, biggest first, as a bar chart.",
        discussion: """
            For each directory: size (the sum of st_size of the regular files below it, at
            any depth), files (regular files below it) and dirs (directories below it, itself
            not counted). Read from the directory-size view: no walk of the disk.

            On the terminal: the path, then the --top biggest directories within --depth
            levels below it, each with a bar scaled to the path's size. With --json: every
            directory within --depth, in tree order, unsorted and unlimited.

            Examples:
              evindex du ~/Photos
              evindex du ~/Photos --depth 3 --top 10 --bytes
              evindex du ~/Photos --depth 3 --json
            """
    )

    @Argument(help: ArgumentHelp("An indexed directory.", valueName: "path"))
    var path: String

    @Option(name: .long, help: ArgumentHelp("How many levels below the path to include (0: the path only).", valueName: "n"))
    var depth: Int = 1

    @Option(name: .long, help: ArgumentHelp("Show the K biggest directories (not with --json, which lists all).", valueName: "k"))
    var top: Int = 20

    @Flag(name: .long, help: "Exact sizes in bytes instead of 1.2G-style sizes.")
    var bytes = false

    @Flag(name: .long, help: "One JSON object per directory: path, size, files, dirs.")
    var json = false

    @Flag(name: .long, help: "Read the views rebuilt by the last `evindex replay` (e.g. `replay --to SEQ`: the index as it was just after SEQ).")
    var replayed = false

    @OptionGroup var database: DatabaseOption

    func validate() throws {
        if depth < 0 { throw ValidationError("--depth must be 0 or more") }
        if top < 0 { throw ValidationError("--top must be 0 or more") }
    }

    func run() throws {
        let index = try ReadOnlyIndex(database, replayed: replayed)
        var out = Output()
        try index.read { snapshot in
            let (path, location) = try index.locate(snapshot, path)
            guard case let .directory(dirID, _) = location else {
                throw CommandFailure(message: "\(displayPath(path)) is not a directory")
            }
            var rows: [(path: [UInt8], totals: DirectoryTotals)] = []
            try collect(snapshot, dirID, path, level: 0, into: &rows)
            if json {
                for row in rows {
                    out.object { o in
                        o.addPath("path", row.path)
                        o.add("size", row.totals.size)
                        o.add("files", row.totals.files)
                        o.add("dirs", row.totals.directories)
                    }
                }
            } else {
                chart(rows, &out)
            }
        }
        out.flush()
    }

    /// The directory and those below it within `depth`, in tree order.
    private func collect(
        _ snapshot: IndexSnapshot, _ dirID: UInt64, _ path: [UInt8], level: Int,
        into rows: inout [(path: [UInt8], totals: DirectoryTotals)]
    ) throws {
        guard let row = try snapshot.directory(dirID) else {
            throw CommandFailure(message: "\(displayPath(path)) has no row in the directory-size view", exitCode: 1)
        }
        rows.append((path, row.totals))
        guard level < depth else { return }
        var children: [([UInt8], UInt64)] = []
        try snapshot.forEachChild(of: dirID) { name, m in
            if m.kind == .directory && m.dirID != 0 { children.append((joinPath(path, name), m.dirID)) }
            return true
        }
        for (childPath, id) in children { try collect(snapshot, id, childPath, level: level + 1, into: &rows) }
    }

    /// The path's line, then the biggest directories with bars relative to the path's size.
    private func chart(_ rows: [(path: [UInt8], totals: DirectoryTotals)], _ out: inout Output) {
        guard let first = rows.first else { return }
        let whole = max(first.totals.size, 1)
        let width = 30
        func size(_ v: Int64) -> String { bytes ? String(v) : humanSize(v) }
        let biggest = rows.dropFirst().sorted { $0.totals.size > $1.totals.size }.prefix(top)
        let sizeWidth = ([first] + biggest).map { size($0.totals.size).count }.max() ?? 0
        func line(_ row: (path: [UInt8], totals: DirectoryTotals)) -> String {
            let s = size(row.totals.size)
            let filled = Int((Double(row.totals.size) / Double(whole) * Double(width)).rounded())
            let bar = String(repeating: "█", count: min(width, filled)) + String(repeating: "░", count: max(0, width - filled))
            let percent = Int((Double(row.totals.size) / Double(whole) * 100).rounded())
            let p = String(percent)
            return String(repeating: " ", count: sizeWidth - s.count) + s + " " + bar + " "
                + String(repeating: " ", count: max(0, 3 - p.count)) + p + "%  "
                + "\(row.totals.files) files, \(row.totals.directories) dirs  \(displayPath(row.path))"
        }
        out.line(line(first))
        for row in biggest { out.line(line(row)) }
        let hidden = rows.count - 1 - biggest.count
        if hidden > 0 { out.line("(\(hidden) smaller directories not shown; --top \(rows.count - 1) shows all)") }
    }
}
