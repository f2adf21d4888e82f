import Rules
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A directory's listing, the rules in force in it, and a task for each subdirectory the
/// walk may enter (in name order), created as soon as it is read so that listers can read
/// ahead of the walk without waiting for it.
struct ListedDirectory: Sendable {
    var listing: DirectoryListing
    var context: DirectoryRules?
    /// The directory's descriptor, shared by `children`; nil for a listing with none.
    var handle: SharedHandle?
    var children: [ListingTask] = []
    /// Its names came from the index (the delegate's or the look-ahead's), not `readdir`.
    var usedIndex = false
    /// The id its subdirectories were looked up under in the index (0: none).
    var indexID: UInt64 = 0
}

/// What reading one subdirectory gave: its listing, or why it could not be opened.
enum ListingOutcome: Sendable {
    case opened(ListedDirectory)
    case failed(Errno)
}

/// An open directory whose subdirectories are still to be opened relative to it: closed
/// when the last of them is, and the walk has decided which of them it enters.
final class SharedHandle: Sendable {
    let handle: DirectoryHandle
    /// One for the walk's hold (until it has matched the tasks with its delegate's
    /// answers), plus one per subdirectory not yet opened or cancelled.
    private let remaining: Atomic<Int>
    private let closed = Atomic<Bool>(false)

    init(_ handle: DirectoryHandle, subdirectories: Int) {
        self.handle = handle
        self.remaining = Atomic(1 + subdirectories)
    }

    /// `count` more subdirectories will be opened relative to it.
    func expect(_ count: Int) { remaining.add(count, ordering: .relaxed) }

    func release<F: FileSystem>(_ fs: F) {
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { close(fs) }
    }

    private func close<F: FileSystem>(_ fs: F) {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) { fs.close(handle) }
    }
}

/// One subdirectory to open and read, by whichever thread gets to it first.
final class ListingTask: @unchecked Sendable {
    // @unchecked: `state`, `id`, `known`, `freshOnly` and `outcome` are touched only with
    // the pool's mutex held (or by the one thread that runs the task); the rest is immutable.
    enum State { case pending, running, done, taken, cancelled }

    let parent: SharedHandle
    let name: [UInt8]
    /// Where the directory is in its parent's `entries`: the walk reads the id its
    /// delegate gave it there.
    let entryIndex: Int
    let stat: EntryStat
    let context: DirectoryRules?
    /// The id the index has for the directory holding it (0: none known), for the look-ahead.
    let indexParentID: UInt64
    /// Set by the walk while the task is pending: its id, the names it need not read, or
    /// that it must be read (`freshOnly`: the delegate wants `readdir`'s names).
    var id: UInt64 = 0
    var known: KnownListing?
    var freshOnly = false
    var state = State.pending
    var outcome: ListingOutcome?

    init(parent: SharedHandle, name: [UInt8], entryIndex: Int, stat: EntryStat, context: DirectoryRules?,
         indexParentID: UInt64) {
        self.parent = parent; self.name = name; self.entryIndex = entryIndex; self.stat = stat; self.context = context
        self.indexParentID = indexParentID
    }
}

/// The tasks lister threads read ahead of the walk: newest first (where the depth-first
/// walk goes next), at most `readAhead` finished listings waiting to be taken. A lister
/// offers the subdirectories of what it read at once, so it can run ahead of the walk
/// down a whole branch; the walk cancels what it turns out not to enter.
final class ListerPool<FS: FileSystem>: @unchecked Sendable {
    // @unchecked: every field is touched only with `mutex` held.
    private var stack: [ListingTask] = []
    private var waiting = 0
    private var stopped = false
    private let readAhead: Int
    private let hasListers: Bool
    private let fileSystem: FS
    /// Listers blocked in `next`, and whether the walk waits in `take`: a wake-up is a
    /// futex call, paid only when someone sleeps.
    private var idleListers = 0
    private var walkWaits = false
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let taskDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(listers: Int, readAhead: Int = 1024, fileSystem: FS) {
        self.hasListers = listers > 0
        self.readAhead = readAhead
        self.fileSystem = fileSystem
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

    /// New tasks, in the order the walk would take them.
    func offer(_ tasks: [ListingTask]) {
        guard hasListers, !tasks.isEmpty else { return }
        pthread_mutex_lock(mutex)
        push(tasks)
        pthread_mutex_unlock(mutex)
    }

    private func push(_ tasks: [ListingTask]) {
        stack.append(contentsOf: tasks.reversed())
        if idleListers > 0 {
            if tasks.count > 1 { pthread_cond_broadcast(workAvailable) } else { pthread_cond_signal(workAvailable) }
        }
    }

    /// A lister's next task; nil once the pool is stopped. `beforeSleeping` runs (with the
    /// pool locked) before the lister waits for work.
    func next(beforeSleeping: () -> Void = {}) -> ListingTask? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !stopped {
            if waiting < readAhead, let task = popPending() {
                task.state = .running
                return task
            }
            beforeSleeping()
            idleListers += 1
            pthread_cond_wait(workAvailable, mutex)
            idleListers -= 1
        }
        return nil
    }

    private func popPending() -> ListingTask? {
        while let task = stack.popLast() {
            if task.state == .pending { return task }
        }
        return nil
    }

    /// A lister read `task`: its listing waits for the walk, and its subdirectories are
    /// offered at once; or, if the walk cancelled it meanwhile, all of it is given back.
    func finish(_ task: ListingTask, _ outcome: ListingOutcome) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard task.state == .running else {
            dispose(outcome)
            return
        }
        task.outcome = outcome
        task.state = .done
        waiting += 1
        if walkWaits { pthread_cond_signal(taskDone) }
        if case let .opened(listed) = outcome, hasListers { push(listed.children) }
    }

    /// How the walk may use a task its delegate has answered for.
    enum Adoption {
        /// Not started: it will be read as the delegate said.
        case adopted
        /// Read (or being read) ahead: usable, unless it took names from the index where
        /// the delegate wants them read (the walk checks `usedIndex` when it takes it).
        case readAhead
        /// Read ahead, but the delegate has the metadata it must carry: read it again.
        case replace
    }

    /// Records the delegate's answer for `task`: its `id`, and `known` names (nil: read them).
    func adopt(_ task: ListingTask, id: UInt64, known: KnownListing?) -> Adoption {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if task.state == .pending {
            task.id = id
            task.known = known
            task.freshOnly = known == nil
            return .adopted
        }
        return known?.stats != nil ? .replace : .readAhead
    }

    /// The walk will not take `task`: gives back what it holds, and what its own
    /// subdirectories' tasks hold.
    func cancel(_ task: ListingTask) {
        pthread_mutex_lock(mutex)
        cancelLocked(task)
        pthread_mutex_unlock(mutex)
    }

    /// Gives back what a listing the walk will not hand over holds.
    func dispose(listed: ListedDirectory) {
        pthread_mutex_lock(mutex)
        dispose(.opened(listed))
        pthread_mutex_unlock(mutex)
    }

    private func cancelLocked(_ task: ListingTask) {
        switch task.state {
        case .pending:
            task.state = .cancelled
            task.parent.release(fileSystem)
        case .running:
            task.state = .cancelled // `finish` gives its outcome back
        case .done:
            task.state = .cancelled
            waiting -= 1
            if let outcome = task.outcome { dispose(outcome) }
            task.outcome = nil
        case .taken, .cancelled:
            break
        }
    }

    private func dispose(_ outcome: ListingOutcome) {
        guard case let .opened(listed) = outcome else { return }
        for child in listed.children { cancelLocked(child) }
        listed.handle?.release(fileSystem)
    }

    /// The walk's next task: read by a lister, or by `run` on the calling thread if no
    /// lister has started it (its subdirectories are then offered to the listers). While a
    /// lister reads it, the calling thread reads the next pending task rather than sleep.
    func take(_ task: ListingTask, run: (ListingTask) -> ListingOutcome) -> ListingOutcome {
        pthread_mutex_lock(mutex)
        while true {
            switch task.state {
            case .pending:
                task.state = .taken
                pthread_mutex_unlock(mutex)
                let outcome = run(task)
                if case let .opened(listed) = outcome { offer(listed.children) }
                return outcome
            case .done:
                task.state = .taken
                waiting -= 1
                let outcome = task.outcome!
                task.outcome = nil
                if waiting == readAhead - 1 && idleListers > 0 { pthread_cond_broadcast(workAvailable) }
                pthread_mutex_unlock(mutex)
                return outcome
            case .running:
                if waiting < readAhead - 1, let other = popPending() {
                    other.state = .running
                    pthread_mutex_unlock(mutex)
                    finish(other, run(other))
                    pthread_mutex_lock(mutex)
                    continue
                }
                walkWaits = true
                pthread_cond_wait(taskDone, mutex)
                walkWaits = false
            case .taken, .cancelled:
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
