import ArgumentParser
import EventStore
import Events
import History
import Indexing
import JSONFormat
import Projections
import Search

/// The log and views of a database, opened for reading, with the CLI's one-line failures.
struct ReadOnlyIndex {
    let reader: IndexReader
    var log: EventLog { reader.log }
    var views: Views { reader.views }
    /// The database directory, for messages.
    let directory: String
    /// With `--at`: the views of that point, kept open while they are read.
    private let past: LearnedIndex?

    /// - Parameter replayed: read the views `evindex replay` built instead of the live ones.
    /// - Parameter at: read the index as it was at that point of the log instead.
    init(_ option: DatabaseOption, replayed: Bool = false, at: PastPoint? = nil) throws {
        directory = option.directory
        do {
            let live = try IndexReader(directory: option.directory, replayed: replayed)
            guard let at else {
                reader = live
                past = nil
                return
            }
            let through = try live.read { try at.sequence($0) }
            let learned = try LearnedIndex.at(through, log: live.log, live: live.views)
            reader = learned.reader(log: live.log)
            past = learned
        } catch let error as ViewError {
            guard case .noReplayedViews = error else { throw error }
            throw CommandFailure(message: "\(error)")
        } catch let error as HistoryError {
            throw CommandFailure(message: error.message)
        } catch let error as DecodeError {
            throw CommandFailure(message: "\(error) in \(option.directory)", exitCode: 1)
        }
    }

    /// Runs `body` with a snapshot of the log and the views.
    func read<R>(_ body: (IndexSnapshot) throws -> R) throws -> R { try reader.read(body) }

    /// Finds a path the user gave in the index, or fails with one line.
    func locate(_ snapshot: IndexSnapshot, _ given: String) throws -> (path: [UInt8], location: Views.Location) {
        let path = absolutePath(rawArgument(given))
        guard let location = try snapshot.locate(path) else {
            throw CommandFailure(message: "\(displayPath(path)) is not in the index (indexed roots: \(try rootList(snapshot)))")
        }
        return (path, location)
    }

    /// Run `id`'s row, or a one-line failure naming the database.
    func run(_ snapshot: IndexSnapshot, id: UInt32) throws -> RunRecord {
        guard let run = try snapshot.run(id) else { throw CommandFailure(message: "no run \(id) in \(directory)") }
        return run
    }

    func rootList(_ snapshot: IndexSnapshot) throws -> String {
        let roots = try snapshot.roots().map { displayPath($0.path) }
        return roots.isEmpty ? "none" : roots.joined(separator: ", ")
    }
}

func joinPath(_ dir: [UInt8], _ name: UnsafeRawBufferPointer) -> [UInt8] { PathBytes.joined(dir, name) }

/// `--at`: ls, du and find of the index as it was at a point of its log.
struct PastOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Answer from the index as it was just after run N (N), sequence N (seq:N) or a time (a date like 2026-11-01, or a duration ago like 7d).",
            valueName: "run|seq:N|date"))
    var at: String?

    /// The point `--at` names, nil without it.
    func point() throws -> PastPoint? {
        guard let at else { return nil }
        if let id = UInt32(at) { return .run(id) }
        if at.hasPrefix("seq:"), let seq = UInt64(at.dropFirst(4)) { return .sequence(seq) }
        guard let ns = try? TimeFilter.parse(at, nowNs: TimeFilter.nowNs()) else {
            throw CommandFailure(message: "--at \(at): want a run number, seq:N, a date like 2026-11-01 or a duration like 7d")
        }
        return .time(ns / 1_000_000)
    }
}
