import ArgumentParser
import EventStore
import Events
import Indexing
import JSONFormat
import Projections

/// The log and views of a database, opened for reading, with the CLI's one-line failures.
struct ReadOnlyIndex {
    let reader: IndexReader
    var log: EventLog { reader.log }
    var views: Views { reader.views }
    /// The database directory, for messages.
    let directory: String

    /// - Parameter replayed: read the views `evindex replay` built instead of the live ones.
    init(_ option: DatabaseOption, replayed: Bool = false) throws {
        directory = option.directory
        do {
            reader = try IndexReader(directory: option.directory, replayed: replayed)
        } catch let error as ViewError {
            guard case .noReplayedViews = error else { throw error }
            throw CommandFailure(message: "\(error)")
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
