import ArgumentParser
import EventStore
import Events
import Indexing
import Projections
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

@main
struct Evindex: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evindex",
        abstract: "An event-sourced index of file trees, kept in an LMDB event log.",
        discussion: """
            Every fact evindex learns about a tree is an event appended to one log; the
            file-path and directory-size views are folds of that log.

            Examples:
              evindex run ~/Photos           index a tree (again: only changes are written)
              evindex ls ~/Photos -R         what the index holds below a path
              evindex du ~/Photos --depth 2  the biggest directories, from the index
              evindex find -e jpg -S +5m     files by name, kind, size and time
              evindex log --run 3            the events of run 3
              evindex runs                   every run, its status and counts
              evindex show 3                 one run: events by type, errors, pauses
              evindex diff 2 3               what run 3 learned that run 2 did not, by path
              evindex export 3 > run3.ndjson one run, for `evindex import` elsewhere
              evindex replay --verify        rebuild the views from the log and compare
              evindex verify                 every checksum, and the views against a replay

            Exit codes: 0 done (non-critical errors are counted in the summary), 1 the job
            failed or the database is damaged, 2 bad usage or input, 130 paused by a signal
            (run the same command again to resume).
            """,
        version: IndexJob.version,
        subcommands: [
            RunCommand.self, LsCommand.self, DuCommand.self, FindCommand.self, LogCommand.self, RunsCommand.self, ShowCommand.self, DiffCommand.self,
            ExportCommand.self, ImportCommand.self, ReplayCommand.self, VerifyCommand.self, WhyCommand.self,
        ]
    )

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        var databaseDirectory: String?
        // The parser answers `help NAME` for any NAME with the overview, exit 0: a typo
        // in a script would pass unnoticed.
        if arguments.count >= 2, arguments[0] == "help", !arguments[1].hasPrefix("-"),
            !configuration.subcommands.contains(where: { $0._commandName == arguments[1] })
        {
            printError("no command `\(arguments[1])` (`evindex --help` lists them)")
            exitProcess(2)
        }
        do {
            var command = try parseAsRoot()
            databaseDirectory = (command as? any UsesDatabase)?.database.directory
            try command.run()
        } catch {
            guard let failure = Self.failure(error, databaseDirectory: databaseDirectory) else {
                // The parser's own outcomes: --help and --version exit 0 through it.
                let code = exitCode(for: error)
                if code == .success || code == .failure { exit(withError: error) }
                // Usage errors: the parser's message, then exit 2 as documented.
                writeAll(2, Array((fullMessage(for: error) + "\n").utf8))
                exitProcess(2)
            }
            if !failure.message.isEmpty { printError(failure.message) }
            exitProcess(failure.exitCode)
        }
    }

    /// Every error a command can end with, as its one line and exit code (the table in
    /// `--help`): 1 the job failed or the database is damaged, 2 bad usage or input. Nil
    /// for the argument parser's own errors.
    static func failure(_ error: any Error, databaseDirectory: String? = nil) -> CommandFailure? {
        switch error {
        case let error as CommandFailure: error
        case let error as IndexError: CommandFailure(message: error.message, exitCode: error.code == .badRoot ? 2 : 1)
        case let error as StoreError:
            CommandFailure(message: error.message, exitCode: error.code == .lmdb || error.code == .corrupt ? 1 : 2)
        case is DecodeError, is ViewError: CommandFailure(message: "\(error)", exitCode: 1)
        default: StoreError.databaseErrorMessage(error, directory: databaseDirectory).map { CommandFailure(message: $0, exitCode: 1) }
        }
    }
}

func exitProcess(_ code: Int32) -> Never {
    Glibc.exit(code)
}

/// A failure a command reports in one line (none when empty: the command printed its
/// answer), with its exit code.
struct CommandFailure: Error {
    var message: String
    var exitCode: Int32 = 2
}

/// A command that reads or writes a database: its failures can name it.
protocol UsesDatabase {
    var database: DatabaseOption { get }
}

extension RunCommand: UsesDatabase {}
extension LsCommand: UsesDatabase {}
extension DuCommand: UsesDatabase {}
extension FindCommand: UsesDatabase {}
extension LogCommand: UsesDatabase {}
extension RunsCommand: UsesDatabase {}
extension ShowCommand: UsesDatabase {}
extension DiffCommand: UsesDatabase {}
extension ExportCommand: UsesDatabase {}
extension ImportCommand: UsesDatabase {}
extension ReplayCommand: UsesDatabase {}
extension VerifyCommand: UsesDatabase {}
extension WhyCommand: UsesDatabase {}

/// Where the database is: `--db`, else `$EVINDEX_DB`, else the XDG data directory.
struct DatabaseOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The database directory (default: $EVINDEX_DB, else $XDG_DATA_HOME/evindex, else ~/.local/share/evindex).",
            valueName: "dir"))
    var db: String?

    var directory: String {
        if let db { return db }
        var environment: [String: String] = [:]
        for name in ["EVINDEX_DB", "XDG_DATA_HOME", "HOME"] {
            if let v = getenv(name) { environment[name] = String(cString: v) }
        }
        return EventLog.defaultDirectory(environment: environment)
    }
}

extension DatabaseOption {
    /// Opens an existing database for a command that writes its own views (replay,
    /// verify): the run lock first, so no run writes meanwhile.
    /// - Parameter beforeOpening: runs under the lock before LMDB maps the file.
    func openLocked(doing what: String, beforeOpening: () throws -> Void = {}) throws -> (EventLog, WriterLock) {
        guard access(directory + "/data.mdb", F_OK) == 0 else {
            throw StoreError(.missing, "no evindex database at \(directory) (run `evindex run PATH` first)")
        }
        let lock = try WriterLock(directory: directory, holder: "pid \(getpid()), \(what)")
        try beforeOpening()
        let log = try EventLog(directory: directory, create: false, upgrading: true)
        try SchemaUpgrade.upgradeIfNeeded(log)
        return (log, lock)
    }
}

/// The exact bytes the user typed for an argument: argv, not the String the parser made
/// of it (which would have replaced bytes that are not UTF-8).
func rawArgument(_ parsed: String) -> [UInt8] {
    for i in 1..<Int(CommandLine.argc) {
        guard let arg = CommandLine.unsafeArgv[i] else { continue }
        let bytes = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(arg), count: strlen(arg)))
        if String(decoding: bytes, as: UTF8.self) == parsed { return bytes }
    }
    return Array(parsed.utf8)
}

/// An absolute, normalized form of a path the user gave. Its directories are resolved on
/// disk when they exist (as the index stores roots); its last component is kept as is, so a
/// symlink names the link, not its target.
func absolutePath(_ given: [UInt8]) -> [UInt8] {
    let slash = UInt8(ascii: "/")
    var trimmed = given
    while trimmed.count > 1 && trimmed.last == slash { trimmed.removeLast() }
    let cut = trimmed.lastIndex(of: slash)
    let last = Array(cut.map { trimmed[($0 + 1)...] } ?? trimmed[...])
    if last.isEmpty || last == [UInt8(ascii: ".")] || last == [UInt8(ascii: "."), UInt8(ascii: ".")] {
        return resolved(trimmed) ?? lexicallyAbsolute(trimmed)
    }
    let directory: [UInt8] = cut.map { $0 == 0 ? [slash] : Array(trimmed[..<$0]) } ?? [UInt8(ascii: ".")]
    guard let base = resolved(directory) else { return lexicallyAbsolute(trimmed) }
    return (base == [slash] ? [] : base) + [slash] + last
}

private func resolved(_ path: [UInt8]) -> [UInt8]? { realPath(path) }

private func lexicallyAbsolute(_ given: [UInt8]) -> [UInt8] {
    var path = given
    if path.first != UInt8(ascii: "/") {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if getcwd(&buffer, buffer.count) != nil {
            let cwd = buffer.withUnsafeBytes { Array($0[0..<strlen(buffer)]) }
            path = cwd + [UInt8(ascii: "/")] + path
        }
    }
    var parts: [ArraySlice<UInt8>] = []
    for part in path.split(separator: UInt8(ascii: "/")) {
        if part == [UInt8(ascii: ".")] { continue }
        if part == [UInt8(ascii: "."), UInt8(ascii: ".")] { _ = parts.popLast(); continue }
        parts.append(part)
    }
    var out: [UInt8] = []
    for part in parts { out.append(UInt8(ascii: "/")); out.append(contentsOf: part) }
    return out.isEmpty ? [UInt8(ascii: "/")] : out
}
