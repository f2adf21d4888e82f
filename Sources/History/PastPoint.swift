import EventStore
import Events
import Projections

/// A point of the log that `--at` names: just after a run, after a sequence, or at a time.
///
/// Rule: the index "at" a point is the fold of the log through one sequence: a run's last
/// event, the sequence itself, or the last event written at or before the time. So
/// `--at` answers what `replay --to SEQ` then `--replayed` answers, with no replay.
public enum PastPoint: Sendable, Equatable {
    case run(UInt32)
    case sequence(UInt64)
    /// Milliseconds since the epoch.
    case time(Int64)

    /// The sequence this point stands for in the log `snapshot` reads.
    public func sequence(_ snapshot: IndexSnapshot) throws -> UInt64 {
        let last = try snapshot.lastSequence()
        switch self {
        case let .run(id):
            guard let run = try snapshot.run(id) else { throw HistoryError("no run \(id) in the database") }
            return run.lastSequence
        case let .sequence(seq):
            guard seq >= 1 && seq <= last else { throw HistoryError("no sequence \(seq) in the log (it holds 1–\(last))") }
            return seq
        case let .time(ms):
            // The last run begun by then; its events (and any after it) up to the time.
            guard let run = try snapshot.runs().last(where: { $0.startedMs <= ms }) else {
                throw HistoryError("no run had begun by then")
            }
            if run.endedMs > 0 && run.endedMs <= ms && run.lastSequence == last { return last }
            var found = run.firstSequence
            try snapshot.forEachEventTime(from: run.firstSequence) { seq, timeMs in
                guard timeMs <= ms else { return false }
                found = seq
                return true
            }
            return found
        }
    }
}
