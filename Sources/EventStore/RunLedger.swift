import Events

/// What the log says of each run, folded event by event, to hold the runs table to it
/// (`verify`).
///
/// Rule: a run's row says only what its events say: it starts at its `JobStarted` (same
/// root, root directory and time), and a completed or failed row ends at its
/// `JobCompleted` or `JobFailed` (same counts or message, same time); a paused row's last
/// event paused it, a running row's last event did not end it. Motivation: the row is
/// written in the same transaction as those events but stored apart, and `runs`, `diff`
/// and a rescan's trust in the views read it; a damaged start time passed `verify`.
///
/// Not compared: a running or paused row's counts (a commit that failed may have counted
/// events it never wrote), and the row of a run imported while unfinished, which ends
/// where its export ended.
package struct RunLedger {
    private enum End {
        case completed(RunCounts, timeMs: Int64)
        case failed(message: String, timeMs: Int64)
        case paused
    }

    private struct Run {
        var first: UInt64
        var last: UInt64
        var start: (root: [UInt8], rootDirID: UInt64, timeMs: Int64)?
        var end: End?
    }

    private var runs: [UInt32: Run] = [:]

    package init() {}

    /// Folds one event of the log, in order.
    package mutating func add(sequence: UInt64, run id: UInt32, timeMs: Int64, item: LogItem) {
        var run = runs[id] ?? Run(first: sequence, last: sequence)
        run.last = sequence
        if case let .other(event) = item {
            switch event {
            case let .jobStarted(root, rootDirID, _, _, _) where run.first == sequence:
                run.start = (root, rootDirID, timeMs)
            case let .jobCompleted(counts): run.end = .completed(counts, timeMs: timeMs)
            case let .jobFailed(message): run.end = .failed(message: message, timeMs: timeMs)
            case .jobPaused: run.end = .paused
            case .jobResumed: run.end = nil
            default: break
            }
        }
        runs[id] = run
    }

    /// The first row that says what the log does not, as a sentence; nil when all agree.
    package func firstMismatch(_ rows: [RunRecord]) -> String? {
        for row in rows {
            let name = "run \(row.id)'s row in the runs table"
            guard let run = runs[row.id] else { return "\(name) has no events in the log" }
            guard let start = run.start else { return "run \(row.id)'s first event (\(run.first)) is not its JobStarted" }
            guard row.firstSequence == run.first else {
                return "\(name) starts at event \(row.firstSequence), its JobStarted is event \(run.first)"
            }
            guard row.root == start.root, row.rootDirID == start.rootDirID else {
                return "\(name) names another root than its JobStarted"
            }
            guard row.startedMs == start.timeMs else {
                return "\(name) says it started at \(row.startedMs) ms, its JobStarted at \(start.timeMs) ms"
            }
            guard row.lastSequence >= row.firstSequence, row.lastSequence <= run.last else {
                return "\(name) ends at event \(row.lastSequence), its events span \(run.first) to \(run.last)"
            }
            if let problem = endProblem(row, run, name) { return problem }
        }
        let rowIDs = Set(rows.map(\.id))
        if let missing = runs.keys.filter({ !rowIDs.contains($0) }).min() {
            return "the log holds events of run \(missing), the runs table has no row for it"
        }
        return nil
    }

    private func endProblem(_ row: RunRecord, _ run: Run, _ name: String) -> String? {
        switch (row.status, run.end) {
        case let (.completed, .completed(counts, timeMs)?):
            guard row.counts == counts else { return "\(name) holds other counts than its JobCompleted" }
            guard row.endedMs == timeMs else { return "\(name) says it ended at \(row.endedMs) ms, its JobCompleted at \(timeMs) ms" }
        case let (.failed, .failed(message, timeMs)?), let (.abandoned, .failed(message, timeMs)?):
            guard row.message == message else { return "\(name) holds another message than its JobFailed" }
            guard row.endedMs == timeMs else { return "\(name) says it ended at \(row.endedMs) ms, its JobFailed at \(timeMs) ms" }
        case (.abandoned, _), (.paused, .paused?), (.running, nil):
            return nil
        default:
            return "\(name) says the run is \(row.status.name), its events say \(Self.describe(run.end))"
        }
        guard row.lastSequence == run.last else { return "\(name) ends at event \(row.lastSequence), its last event is \(run.last)" }
        return nil
    }

    private static func describe(_ end: End?) -> String {
        switch end {
        case .completed?: "completed"
        case .failed?: "failed"
        case .paused?: "paused"
        case nil: "running"
        }
    }
}
