import ArgumentParser
import Dispatch
import Indexing
import JSONFormat
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Shows a run's progress on standard error: a live line on a terminal (none otherwise),
/// or one JSON object per interval with `--progress json`.
final class ProgressDisplay: @unchecked Sendable {
    // @unchecked: `stopped` is a Mutex; the rest is immutable or Sendable.
    enum Mode: String, CaseIterable, ExpressibleByArgument, Sendable {
        case auto, json, none
    }

    private let progress: RunProgress
    private let mode: Mode
    private let stopped = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started = ProgressDisplay.seconds()

    init(progress: RunProgress, mode: Mode) {
        self.progress = progress
        self.mode = mode == .auto && isatty(2) == 0 ? .none : mode
    }

    func start() {
        guard mode != .none else { return }
        DispatchQueue.global().async { [self] in
            var lastEntries: UInt64 = 0
            var lastTime = Self.seconds()
            while !isStopped {
                usleep(200_000)
                let now = Self.seconds()
                let entries = progress.entries
                let rate = Double(entries - min(entries, lastEntries)) / max(now - lastTime, 0.001)
                lastEntries = entries
                lastTime = now
                if !isStopped { show(rate: rate, final: false) }
            }
            finished.signal()
        }
    }

    private var isStopped: Bool { stopped.withLock { $0 } }

    /// Seconds on the monotonic clock.
    private static func seconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Stops the display and clears the live line.
    func stop() {
        guard mode != .none else { return }
        stopped.withLock { $0 = true }
        finished.wait()
        if mode == .auto { writeAll(2, Array("\r\u{1B}[K".utf8)) }
    }

    private func show(rate: Double, final: Bool) {
        let elapsed = Self.seconds() - started
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
                "\(progress.phase.name)  \(progress.entries) entries  \(progress.directoriesListed) dirs (\(progress.directoriesQueued) queued)  \(UInt64(rate))/s  \(humanSize(progress.bytes))  \(progress.errors) errors  \(format3(elapsed)) s"
            writeAll(2, Array(("\r\u{1B}[K" + line).utf8))
        case .none:
            break
        }
    }
}
