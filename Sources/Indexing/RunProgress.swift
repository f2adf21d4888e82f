import Synchronization

/// Live counters of a run, composed from the walker and the writer; read by a reporter
/// on another thread. Updated once per directory or batch, never per entry.
public final class RunProgress: Sendable {
    public enum Phase: UInt8, Sendable {
        case starting = 0, walking, saving, finishing, done

        public var name: String {
            switch self {
            case .starting: "starting"
            case .walking: "walking"
            case .saving: "saving"
            case .finishing: "finishing"
            case .done: "done"
            }
        }
    }

    private let phaseValue = Atomic<UInt8>(0)
    private let entriesValue = Atomic<UInt64>(0)
    private let bytesValue = Atomic<UInt64>(0)
    private let directoriesListedValue = Atomic<UInt64>(0)
    private let directoriesFoundValue = Atomic<UInt64>(0)
    private let errorsValue = Atomic<UInt64>(0)
    private let eventsValue = Atomic<UInt64>(0)

    public init() {}

    public var phase: Phase { Phase(rawValue: phaseValue.load(ordering: .relaxed)) ?? .starting }
    /// Entries seen by the walk (a resumed run counts what its first part saw too).
    public var entries: UInt64 { entriesValue.load(ordering: .relaxed) }
    /// Sum of st_size of the regular files seen.
    public var bytes: UInt64 { bytesValue.load(ordering: .relaxed) }
    public var directoriesListed: UInt64 { directoriesListedValue.load(ordering: .relaxed) }
    /// Directories found and not listed yet.
    public var directoriesQueued: UInt64 {
        let found = directoriesFoundValue.load(ordering: .relaxed), listed = directoriesListed
        return found > listed ? found - listed : 0
    }
    public var errors: UInt64 { errorsValue.load(ordering: .relaxed) }
    /// Events written by this process.
    public var events: UInt64 { eventsValue.load(ordering: .relaxed) }

    func set(_ phase: Phase) { phaseValue.store(phase.rawValue, ordering: .relaxed) }

    func listed(entries: UInt64, bytes: UInt64, subdirectories: UInt64, errors: UInt64) {
        entriesValue.add(entries, ordering: .relaxed)
        bytesValue.add(bytes, ordering: .relaxed)
        directoriesListedValue.add(1, ordering: .relaxed)
        directoriesFoundValue.add(subdirectories, ordering: .relaxed)
        errorsValue.add(errors, ordering: .relaxed)
    }

    func rootFound() { directoriesFoundValue.add(1, ordering: .relaxed) }

    /// Directories a resumed run counted from the views without listing them again.
    func listedWithoutReading(_ count: UInt64) { directoriesListedValue.add(count, ordering: .relaxed) }

    func wrote(events: UInt64) { eventsValue.add(events, ordering: .relaxed) }
}
