import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT and SIGTERM, caught: whatever runs stops at its next checkpoint instead of dying
/// mid-write. A run pauses (its `StopFlag` reads this), `log --follow` ends its loop.
///
/// One process-wide flag, because a signal handler can capture nothing; it is only ever
/// raised, so a command that caught the signals checks it and decides what stopping means.
public enum StopSignals {
    private static let raised = Atomic<Bool>(false)

    /// Whether SIGINT or SIGTERM arrived since `catchThem()`.
    public static var isRaised: Bool { raised.load(ordering: .relaxed) }

    /// Makes SIGINT and SIGTERM raise the flag instead of killing the process.
    public static func catchThem() {
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { _ in StopSignals.raised.store(true, ordering: .relaxed) }
            sigaddset(&set, sig)
        }
        // A parent may have left them blocked (the mask is inherited across exec).
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
