import ArgumentParser
import EventStore
import Events
import History
import Indexing
import JSONFormat
import Projections
import Search
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write one run as NDJSON, self-contained, for `evindex import` elsewhere.",
        discussion: """
            Line 1 describes the run (the fields of `runs --json`, plus root_dir_id,
            first_index and base_entries). Then, unless the run was its root's first
            index, the index below its root just before the run began, one `"base":true`
            object per entry (parents before children) and per rejected name (with its
            rule). Then the run's own events, as `log --json` prints them but without
            resolved paths. Names that are not UTF-8 are carried exactly in their `_b64`
            twins.

            With --ncdu PATH: the index below PATH (an indexed directory) as ncdu's JSON
            export (format 1.2): names as their raw bytes, asize (st_size), dsize
            (st_blocks × 512), ino, and hlnkc and nlink for hard links, so `ncdu -f` and
            `gdu -f` browse it and count what du counts.

            Examples:
              evindex export 3 > run3.ndjson
              evindex export 3 --db ~/.local/share/evindex | ssh host evindex import -
              evindex export --ncdu ~/Photos > photos.json && ncdu -f photos.json
            """
    )

    @Argument(help: ArgumentHelp("The run id (see `evindex runs`); with --ncdu, an indexed directory.", valueName: "run|path"))
    var what: String

    @Flag(name: .long, help: "Write the index below the path as ncdu's JSON export instead of a run.")
    var ncdu = false

    @Flag(name: .long, help: "NDJSON (the only format; accepted for symmetry with the other commands).")
    var json = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let index = try ReadOnlyIndex(database)
        if ncdu { return try exportNcdu(index) }
        guard let runID = UInt32(what) else { throw CommandFailure(message: "\(what) is not a run id (with --ncdu it would be a path)") }
        let run = try index.read { try index.run($0, id: runID) }
        var out = Output()
        var checksum: UInt32 = 0
        var (baseLines, eventLines) = (0, 0)
        func line(_ text: String) {
            var bytes = text + "\n"
            checksum = bytes.withUTF8 { CRC32C.update(checksum, UnsafeRawBufferPointer($0)) }
            out.line(text)
        }
        do {
            try ExportedRun.read(log: index.log, live: index.views, run: run) { section in
                switch section {
                case let .header(r, baseEntries): line(ExportFormat.header(r, baseEntries: baseEntries))
                case let .base(entry):
                    line(ExportFormat.base(entry))
                    baseLines += 1
                case let .event(record):
                    line(ExportFormat.event(record))
                    eventLines += 1
                }
            }
        } catch let error as DecodeError {
            out.flush()
            throw CommandFailure(message: "\(error) in \(database.directory)", exitCode: 1)
        }
        out.line(ExportFormat.trailer(baseEntries: baseLines, events: eventLines, checksum: checksum))
        out.flush()
    }

    private func exportNcdu(_ index: ReadOnlyIndex) throws {
        try index.read { snapshot in
            let (path, location) = try index.locate(snapshot, what)
            guard case let .directory(dirID, metadata) = location else {
                throw CommandFailure(message: "\(displayPath(path)) is not a directory")
            }
            let now = TimeFilter.nowNs() / 1_000_000_000
            try NcduFormat.write(snapshot, dirID: dirID, path: path, metadata: metadata, timestamp: now) { chunk in
                writeAll(1, chunk)
            }
        }
    }
}
