#if canImport(Glibc)
    import Glibc
#endif

/// Timed waits on a condition variable by the monotonic clock.
///
/// Rule: every condition a thread waits on with a timeout is made with
/// `initMonotonicCondition`, and its deadline is `monotonicDeadline(afterMs:)`. Motivation:
/// pthread conditions time out by CLOCK_REALTIME unless told otherwise, so a step of the
/// wall clock (NTP, a suspended VM catching up) would stretch a 100 ms wait to hours or
/// cut it to nothing.
public enum MonotonicWait {
    /// Initializes `condition` to time out by CLOCK_MONOTONIC.
    public static func initCondition(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// The monotonic time `ms` milliseconds from now, for `pthread_cond_timedwait`.
    public static func deadline(afterMs ms: Int64) -> timespec {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanos = Int64(deadline.tv_nsec) + (ms % 1000) * 1_000_000
        deadline.tv_sec += Int(ms / 1000) + Int(nanos / 1_000_000_000)
        deadline.tv_nsec = Int(nanos % 1_000_000_000)
        return deadline
    }
}
