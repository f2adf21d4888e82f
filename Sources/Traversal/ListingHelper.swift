import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Wakes one thread that waits for work from several sources (an event count): a waiter
/// takes a `ticket`, looks at each source, and waits only if none had work and nothing
/// rang since the ticket. Ringing costs an atomic add when nobody waits.
public final class Doorbell: @unchecked Sendable {
    // @unchecked: the mutex and condition are used only through pthread calls.
    private let rings = Atomic<UInt64>(0)
    private let waiters = Atomic<Int>(0)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let rang = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        MonotonicWait.initCondition(rang)
    }

    deinit {
        pthread_cond_destroy(rang)
        pthread_mutex_destroy(mutex)
        rang.deallocate(); mutex.deallocate()
    }

    /// Taken before looking for work.
    public var ticket: UInt64 { rings.load(ordering: .sequentiallyConsistent) }

    /// Some source has new work.
    public func ring() {
        rings.add(1, ordering: .sequentiallyConsistent)
        // Seen as 0 only if the waiter's count comes later, and then it sees this ring.
        guard waiters.load(ordering: .sequentiallyConsistent) > 0 else { return }
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(rang)
        pthread_mutex_unlock(mutex)
    }

    /// Waits until a ring after `ticket` was taken, or `timeoutMs` passes.
    public func wait(_ ticket: UInt64, timeoutMs: Int64) {
        var deadline = MonotonicWait.deadline(afterMs: timeoutMs)
        pthread_mutex_lock(mutex)
        waiters.add(1, ordering: .sequentiallyConsistent)
        while rings.load(ordering: .sequentiallyConsistent) == ticket {
            if pthread_cond_timedwait(rang, mutex, &deadline) == ETIMEDOUT { break }
        }
        waiters.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
    }
}

/// Lets a thread with work of its own (the writer) read directories ahead of the walk
/// whenever it has nothing else to do, instead of sleeping while a third thread does: on
/// two cores, two busy threads and no third.
///
/// The walk attaches its listers' pool for as long as it runs; `helpOnce` then reads one
/// directory (or one chunk of a huge directory's stats) if one is waiting, and never
/// waits for the walk. `bell` rings when the pool has new work, and may ring for the
/// helping thread's other sources too.
public final class ListingHelper: @unchecked Sendable {
    // @unchecked: `work` is touched only with `mutex` held.
    public let bell = Doorbell()
    private var work: (@Sendable (UInt64?) -> Bool)?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Does one piece of the walk's work if there is one: false when there was none (or
    /// no walk is running). With `largest`, a directory whose `st_size` is larger is left
    /// to the walk's threads (a small one is read in a few milliseconds).
    public func helpOnce(largest: UInt64? = nil) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return work?(largest) ?? false
    }

    func attach(_ work: @escaping @Sendable (UInt64?) -> Bool) {
        pthread_mutex_lock(mutex)
        self.work = work
        pthread_mutex_unlock(mutex)
    }

    /// Returns once the helping thread is out of the walk's work: nothing of the walk runs
    /// after the walk returns.
    func detach() {
        pthread_mutex_lock(mutex)
        work = nil
        pthread_mutex_unlock(mutex)
    }
}
