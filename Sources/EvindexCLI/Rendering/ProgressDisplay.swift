import ArgumentParser
import Foundation
import Indexing
import JSONFormat

/// Shows a run's progress on standard error: a live line on a terminal (none otherwise),
/// or one JSON object per interval with `--progress json`.
final class ProgressDisplay: @unchecked Sendable {
    // @unchecked: `stopped` is guarded by `lock`; the rest is immutable or Sendable.
    enum Mode: String, CaseIterable, ExpressibleByArgument, Sendable {
        case auto, json, none
    }

    private let progress: RunProgress
    private let mode: Mode
    private let lock = NSLock()
    private var stopped = false
    private let finished = DispatchSemaphore(value: 0)
    private let started = Date()

    init(progress: RunProgress, mode: Mode) {
        self.progress = progress
        self.mode = mode == .auto && isatty(2) == 0 ? .none : mode
    }

    func start() {
        guard mode != .none else { return }
        Thread.detachNewThread { [self] in
            var lastEntries: UInt64 = 0
            var lastTime = Date()
            while !isStopped {
                Thread.sleep(forTimeInterval: 0.2)
                let now = Date()
                let entries = progress.entries
                let rate = Double(entries - min(entries, lastEntries)) / max(now.timeIntervalSince(lastTime), 0.001)
                lastEntries = entries
                lastTime = now
                if !isStopped { show(rate: rate, final: false) }
            }
            finished.signal()
        }
    }

    private var isStopped: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopped
    }

    /// Stops the display and clears the live line.
    func stop() {
        guard mode != .none else { return }
        lock.lock(); stopped = true; lock.unlock()
        finished.wait()
        if mode == .auto { writeAll(2, Array("\r\u{1B}[K".utf8)) }
    }

    private func show(rate: Double, final: Bool) {
        let elapsed = Date().timeIntervalSince(started)
        switch mode {
        case .json:
            var o = JSONObject()
            o.add("phase", progress.phase.name)
            o.add("entries", progress.entries)
            o.add("dirs_listed", progress.directoriesListed)
            o.add("dirs_queued", progress.directoriesQueued)
            o.add("entries_per_second", UInt64(rate))
            o.add("bytes", progress.bytes)
            o.add("errors", progress.errors)
            o.add("events", progress.events)
            o.addRaw("elapsed_s", format3(elapsed))
            writeAll(2, Array((o.json + "\n").utf8))
        case .auto:
            let line =
                "\(progress.phase.name)  \(progress.entries) entries  \(progress.directoriesListed) dirs (\(progress.directoriesQueued) queued)  \(UInt64(rate))/s  \(humanSize(Int64(bitPattern: progress.bytes)))  \(progress.errors) errors  \(format3(elapsed)) s"
            writeAll(2, Array(("\r\u{1B}[K" + line).utf8))
        case .none:
            break
        }
    }
}
