import Rules
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A directory's listing and the rules in force in it.
struct ListedDirectory: Sendable {
    var listing: DirectoryListing
    var context: DirectoryRules?
}

/// What reading one subdirectory gave: its descriptor and listing, or why it could not be opened.
enum ListingOutcome: Sendable {
    case opened(DirectoryHandle, ListedDirectory)
    case failed(Errno)
}

/// An open directory whose subdirectories are still to be opened relative to it: closed
/// when the last of them is.
final class SharedHandle: Sendable {
    let handle: DirectoryHandle
    /// One for the walk's own hold, plus one per subdirectory not yet opened.
    private let remaining = Atomic<Int>(1)
    private let closed = Atomic<Bool>(false)

    init(_ handle: DirectoryHandle) { self.handle = handle }

    /// `count` subdirectories will be opened relative to it; the walk's hold ends.
    func expect<F: FileSystem>(_ count: Int, _ fs: F) {
        remaining.add(count, ordering: .relaxed)
        release(fs)
    }

    func release<F: FileSystem>(_ fs: F) {
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { close(fs) }
    }

    private func close<F: FileSystem>(_ fs: F) {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) { fs.close(handle) }
    }
}

/// One subdirectory to open and read, by whichever thread gets to it first.
final class ListingTask: @unchecked Sendable {
    // @unchecked: `state` and `outcome` are touched only with the pool's mutex held;
    // the rest is immutable.
    enum State { case pending, running, done, taken }

    let parent: SharedHandle
    let name: [UInt8]
    let id: UInt64
    let stat: EntryStat
    let context: DirectoryRules?
    let known: KnownListing?
    var state = State.pending
    var outcome: ListingOutcome?

    init(parent: SharedHandle, name: [UInt8], id: UInt64, stat: EntryStat, context: DirectoryRules?, known: KnownListing?) {
        self.parent = parent; self.name = name; self.id = id; self.stat = stat; self.context = context; self.known = known
    }

    /// The walk ended without taking this task: give back what it holds.
    func discard<F: FileSystem>(_ fs: F) {
        switch state {
        case .pending: parent.release(fs)
        case .done: if case let .opened(handle, _)? = outcome { fs.close(handle) }
        case .running, .taken: break
        }
        outcome = nil
    }
}

/// The tasks lister threads read ahead of the walk: newest first (where the depth-first
/// walk goes next), at most `readAhead` finished listings waiting to be taken.
final class ListerPool: @unchecked Sendable {
    // @unchecked: every field is touched only with `mutex` held.
    private var stack: [ListingTask] = []
    private var waiting = 0
    private var stopped = false
    private let readAhead: Int
    private let hasListers: Bool
    /// Listers blocked in `next`, and whether the walk waits in `take`: a wake-up is a
    /// futex call, paid only when someone sleeps.
    private var idleListers = 0
    private var walkWaits = false
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let taskDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(listers: Int, readAhead: Int = 1024) {
        self.hasListers = listers > 0
        self.readAhead = readAhead
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(workAvailable, nil)
        pthread_cond_init(taskDone, nil)
    }

    deinit {
        pthread_cond_destroy(taskDone)
        pthread_cond_destroy(workAvailable)
        pthread_mutex_destroy(mutex)
        taskDone.deallocate(); workAvailable.deallocate(); mutex.deallocate()
    }

    /// New tasks, in the order the walk will take them.
    func offer(_ tasks: [ListingTask]) {
        guard hasListers, !tasks.isEmpty else { return }
        pthread_mutex_lock(mutex)
        stack.append(contentsOf: tasks.reversed())
        if idleListers > 0 {
            if tasks.count > 1 { pthread_cond_broadcast(workAvailable) } else { pthread_cond_signal(workAvailable) }
        }
        pthread_mutex_unlock(mutex)
    }

    /// A lister's next task; nil once the pool is stopped.
    func next() -> ListingTask? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !stopped {
            if waiting < readAhead {
                while let task = stack.popLast() {
                    if task.state == .pending {
                        task.state = .running
                        return task
                    }
                }
            }
            idleListers += 1
            pthread_cond_wait(workAvailable, mutex)
            idleListers -= 1
        }
        return nil
    }

    func finish(_ task: ListingTask, _ outcome: ListingOutcome) {
        pthread_mutex_lock(mutex)
        task.outcome = outcome
        task.state = .done
        waiting += 1
        if walkWaits { pthread_cond_signal(taskDone) }
        pthread_mutex_unlock(mutex)
    }

    /// The walk's next task: read by a lister, or by `run` on the calling thread if no
    /// lister has started it.
    func take(_ task: ListingTask, run: () -> ListingOutcome) -> ListingOutcome {
        pthread_mutex_lock(mutex)
        while true {
            switch task.state {
            case .pending:
                task.state = .taken
                pthread_mutex_unlock(mutex)
                return run()
            case .done:
                task.state = .taken
                waiting -= 1
                let outcome = task.outcome!
                task.outcome = nil
                if waiting == readAhead - 1 && idleListers > 0 { pthread_cond_broadcast(workAvailable) }
                pthread_mutex_unlock(mutex)
                return outcome
            case .running:
                walkWaits = true
                pthread_cond_wait(taskDone, mutex)
                walkWaits = false
            case .taken:
                preconditionFailure("a listing task taken twice")
            }
        }
    }

    func stop() {
        pthread_mutex_lock(mutex)
        stopped = true
        pthread_cond_broadcast(workAvailable)
        pthread_mutex_unlock(mutex)
    }
}

/// A thread with an 8 MiB stack running one closure.
public final class WorkerThread {
    private var thread = pthread_t()

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    public init(_ body: @escaping @Sendable () -> Void) throws(Errno) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, 8 << 20)
        let rc = pthread_create(&thread, &attributes, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw Errno(rawValue: rc)
        }
    }

    public func join() { pthread_join(thread, nil) }
}
