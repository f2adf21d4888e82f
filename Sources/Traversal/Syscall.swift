#if canImport(Glibc)
    import Glibc
#endif

/// Calls a system call until a signal does not interrupt it (swift-nio's syscall funnel).
///
/// Rule: every call that can fail with EINTR goes through here; it returns the call's
/// result when it is not negative, retries on EINTR, and throws `Errno` for any other
/// failure. Motivation: SIGINT and SIGTERM pause a run at its next checkpoint, so a signal
/// arrives in the middle of a read, write, open or stat, and a loop written out at each
/// call was a chance to forget it.
@inline(__always)
public func retryingOnInterrupt<Result: BinaryInteger>(_ call: () -> Result) throws(Errno) -> Result {
    while true {
        let result = call()
        if result >= 0 { return result }
        if errno != EINTR { throw Errno.current }
    }
}
