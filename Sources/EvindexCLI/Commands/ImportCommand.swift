import ArgumentParser
import EventStore
import Events
import History
import Indexing
import JSONFormat
import Projections
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Append a run written by `evindex export` to a database, as a new run.",
        discussion: """
            The run gets the next run id, new sequence numbers and new directory ids; its
            events keep their times. When the export carries a base (the index below the
            root before the run), it is written first as a run of its own, so the imported
            run's index equals the exported one's. The root must not be indexed in this
            database (nor a directory above or below it). The database is created if
            missing. An imported run that was unfinished is marked abandoned: it is never
            resumed here.

            With --ncdu: FILE is an ncdu JSON export (`ncdu -o FILE DIR`, or gdu's); its
            tree becomes a run of the directory it names: an entry per name (excluded ones
            left out), asize as the size, dsize / 512 as the blocks, links as recorded;
            permissions, owner and times only when it was made with `ncdu -e`.

            Examples:
              evindex import run3.ndjson --db /tmp/theirs
              ncdu -o nas.json /mnt/nas && evindex import --ncdu nas.json
              evindex diff --logs ~/.local/share/evindex /tmp/theirs 3 2
            """
    )

    @Argument(help: ArgumentHelp("The export file, or - for standard input.", valueName: "file"))
    var file: String

    @Flag(name: .long, help: "FILE is an ncdu JSON export (ncdu -o), not an evindex one.")
    var ncdu = false

    @Flag(name: .long, help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var database: DatabaseOption

    func run() throws {
        let exported = try readExport()
        try EventLog.prepareDirectory(database.directory)
        let lock = try WriterLock(directory: database.directory, holder: "pid \(getpid()), importing")
        defer { _ = lock }
        let log = try EventLog(directory: database.directory, create: true)
        try SchemaUpgrade.upgradeIfNeeded(log)
        var version = "0.1.0"
        for r in exported.events { if case let .jobStarted(_, _, _, v, _) = r.event { version = v; break } }
        let result: RunImport.Result
        do {
            result = try RunImport.append(exported, log: log, version: version)
        } catch let error as HistoryError {
            if let (root, indexed) = error.overlap {
                throw CommandFailure(
                    message:
                        "\(displayPath(root)) overlaps the indexed root \(displayPath(indexed)) in \(database.directory); import into a database that does not index it"
                )
            }
            throw CommandFailure(message: error.message)
        }
        var out = Output()
        if json {
            var o = JSONObject()
            o.add("run", result.run)
            o.add("source_run", exported.run.id)
            if let b = result.baseRun { o.add("base_run", b) }
            o.add("base_entries", result.baseEntries)
            o.add("events", exported.events.count)
            o.add("first_seq", result.firstSequence)
            o.add("last_seq", result.lastSequence)
            out.line(o.json)
        } else {
            let base = result.baseRun.map { "; its base (\(counted(result.baseEntries, "entry"))) as run \($0)" } ?? ""
            out.line(
                "imported run \(exported.run.id) of \(displayPath(exported.run.root)) as run \(result.run): \(counted(exported.events.count, "event")), \(result.firstSequence)-\(result.lastSequence)\(base)"
            )
        }
        out.flush()
    }

    /// Reads and checks the whole export before anything is written.
    func readExport() throws -> ExportedRun {
        let bytes = try readAll()
        if ncdu {
            do {
                return try NcduFormat.read(bytes, version: "ncdu import")
            } catch let error as NcduFormatError {
                throw CommandFailure(message: "\(displayFile): \(error)")
            }
        }
        do throws(ExportFormatError) {
            return try ExportFormat.decode(bytes)
        } catch {
            guard let line = error.line else { throw CommandFailure(message: "\(displayFile) is empty: not an evindex export") }
            throw CommandFailure(message: "\(displayFile): line \(line): \(error.message)")
        }
    }

    var displayFile: String { file == "-" ? "standard input" : file }

    func readAll() throws -> [UInt8] {
        let fd: Int32 =
            file == "-"
            ? 0
            : (rawArgument(file) + [0]).withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_RDONLY | O_CLOEXEC) }
            }
        if fd < 0 { throw CommandFailure(message: "cannot read \(file): \(String(cString: strerror(errno)))") }
        defer { if fd != 0 { close(fd) } }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n: Int
            do throws(Errno) {
                n = try retryingOnInterrupt { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) } }
            } catch {
                throw CommandFailure(message: "cannot read \(file): \(error)")
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: buffer[0..<n])
        }
    }
}
