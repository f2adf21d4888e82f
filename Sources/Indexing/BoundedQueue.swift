import Traversal

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking FIFO of bounded length between the walker and the writer: a full queue
/// stalls the walker, so memory stays flat whatever the tree.
final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    // @unchecked: `items` is only touched with `mutex` held.
    /// Popped slots are set to nil at once, so a consumed batch is freed when popped,
    /// not when the array is next compacted.
    private var items: [Element?] = []
    private var head = 0
    private let capacity: Int
    /// Rung on each push, for a consumer that waits on other sources too.
    private let bell: Doorbell?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let notEmpty = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let notFull = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(capacity: Int, bell: Doorbell? = nil) {
        self.capacity = capacity
        self.bell = bell
        pthread_mutex_init(mutex, nil)
        // `pop(timeoutMs:)` times out by the monotonic clock.
        MonotonicWait.initCondition(notEmpty)
        pthread_cond_init(notFull, nil)
    }

    deinit {
        pthread_cond_destroy(notFull)
        pthread_cond_destroy(notEmpty)
        pthread_mutex_destroy(mutex)
        notFull.deallocate(); notEmpty.deallocate(); mutex.deallocate()
    }

    private var count: Int { items.count - head }

    func push(_ element: Element) {
        pthread_mutex_lock(mutex)
        while count >= capacity { pthread_cond_wait(notFull, mutex) }
        items.append(element)
        pthread_cond_signal(notEmpty)
        pthread_mutex_unlock(mutex)
        bell?.ring()
    }

    /// The next element if there is one now.
    func popIfAny() -> Element? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return count == 0 ? nil : takeFirst()
    }

    func pop() -> Element { pop(timeoutMs: nil)! }

    /// The next element, or nil when none arrived within `timeoutMs`.
    func pop(timeoutMs: Int64?) -> Element? {
        pthread_mutex_lock(mutex)
        if let timeoutMs {
            var deadline = MonotonicWait.deadline(afterMs: timeoutMs)
            while count == 0 {
                if pthread_cond_timedwait(notEmpty, mutex, &deadline) == ETIMEDOUT && count == 0 {
                    pthread_mutex_unlock(mutex)
                    return nil
                }
            }
        } else {
            while count == 0 { pthread_cond_wait(notEmpty, mutex) }
        }
        let element = takeFirst()
        pthread_mutex_unlock(mutex)
        return element
    }

    /// With `mutex` held and an element there.
    private func takeFirst() -> Element {
        let element = items[head].take()!
        head += 1
        if head >= 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        pthread_cond_signal(notFull)
        return element
    }
}
