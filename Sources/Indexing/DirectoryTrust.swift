import Events

/// Whether a directory's names may be taken from the views instead of read again
/// (Docs/RESCANS.md, rule 6): its row in its parent's listing is unchanged, and it last
/// changed long enough before the previous run began that a write in the same clock tick
/// cannot hide.
///
/// The `ChangeDetector` decides it as it merges the parent's listing, and a lister reading
/// ahead (`ViewLookAhead`) decides it before the detector gets there; both ask these two
/// tests (the same directory, names that stand), so a listing read ahead from the views
/// is the one the detector takes.
struct DirectoryTrust: Sendable {
    /// Directories whose ctime is at or after this (ns) may have changed within the clock
    /// tick of the previous run's listing: never trusted. 2 s before the previous run began.
    let racyThresholdNs: Int64

    /// 2 s before the previous run began; `.min` (nothing trusted) without one.
    init(previousRunStartMs: Int64, trustDirectoryTimes: Bool) {
        racyThresholdNs = trustDirectoryTimes && previousRunStartMs > 0 ? (previousRunStartMs - 2_000) * 1_000_000 : .min
    }

    /// Whether anything can be trusted in this run.
    var trustsAny: Bool { racyThresholdNs > .min }

    /// Whether a directory the walk enters under the name of row `old` is that indexed
    /// directory, and keeps its dir id: another one under the same name (`mv d e; mkdir d`)
    /// is new.
    @inline(__always)
    static func keepsID(old: EntryMetadata, now: EntryMetadata) -> Bool {
        old.kind == .directory && old.dirID != 0 && old.isSameDirectory(as: now)
    }

    /// Whether the names of the directory the walk enters with metadata `now` (carrying the
    /// dir id the walk gives it) stand, when its parent's rows hold `old` under its name.
    @inline(__always)
    func namesStand(old: EntryMetadata, now: EntryMetadata) -> Bool {
        now.kind == .directory && !old.differs(from: now) && now.ctimeNs < racyThresholdNs
    }
}
