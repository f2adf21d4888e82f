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
    /// A rules file could not be read for lack of descriptors.
    var outOfDescriptors = false
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
    /// One for the walk's hold (until the walk has taken the last subdirectory it enters,
    /// or leaves the directory), plus one per subdirectory not yet opened or cancelled.
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
    // @unchecked: `state`, `id`, `known` and `outcome` are touched only with the pool's
    // mutex held (or by the one thread that runs the task); the rest is immutable.
    enum State { case pending, running, done, taken, cancelled }

    let parent: SharedHandle
    /// The parent's listing's names (shared, not copied): this one is
    /// `names[nameStart ..< nameStart + nameLength]`, followed by a NUL.
    let names: [UInt8]
    let nameStart: Int32
    let nameLength: Int32
    /// Where the directory is in its parent's `entries`: the walk reads the id its
    /// delegate gave it there.
    let entryIndex: Int
    let stat: EntryStat
    let context: DirectoryRules?
    /// The id the index has for the directory holding it (0: none known), for the look-ahead.
    let indexParentID: UInt64
    /// Set by the walk while the task is pending: its id (0 until then: a lister may look it
    /// up in the index) and the names it need not read.
    var id: UInt64 = 0
    var known: KnownListing?
    var state = State.pending
    var outcome: ListingOutcome?

    init(
        parent: SharedHandle, names: [UInt8], nameStart: Int32, nameLength: Int32, entryIndex: Int, stat: EntryStat,
        context: DirectoryRules?, indexParentID: UInt64
    ) {
        self.parent = parent; self.names = names; self.nameStart = nameStart; self.nameLength = nameLength
        self.entryIndex = entryIndex; self.stat = stat; self.context = context
        self.indexParentID = indexParentID
    }

    /// The directory's name (a copy, for an error).
    var name: [UInt8] { Array(names[Int(nameStart)..<Int(nameStart + nameLength)]) }

    /// The name as bytes, and as the NUL-terminated string a system call takes.
    func withName<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try names.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[Int(nameStart)..<Int(nameStart + nameLength)])) }
    }

    /// The same directory to read again, as the delegate said (the caller adds its hold on
    /// `parent` for it).
    func again(id: UInt64, known: KnownListing?) -> ListingTask {
        let task = ListingTask(
            parent: parent, names: names, nameStart: nameStart, nameLength: nameLength, entryIndex: entryIndex,
            stat: stat, context: context, indexParentID: 0)
        task.id = id
        task.known = known
        return task
    }
}

/// The `statx` calls of one huge directory's names, in chunks any thread may take: the
/// thread reading the directory offers them to the pool, takes chunks itself, then waits
/// for the chunks others took. The results are in name index order, whoever stat'ed them.
final class StatChunks<FS: FileSystem>: @unchecked Sendable {
    // @unchecked: the pointers are the reading thread's, valid until `waitUntilFinished`
    // returns, and dereferenced only for a claimed chunk (all are claimed by then); each
    // result slot is written by the one thread that claimed its chunk.
    static var chunkSize: Int { 256 }

    private let fileSystem: FS
    private let handle: DirectoryHandle
    private let names: UnsafeRawPointer
    private let starts: UnsafePointer<(Int32, Int32)>
    private let count: Int
    private let chunks: Int
    /// The stat of each name, or its errno (0 when the stat succeeded).
    let stats: UnsafeMutablePointer<EntryStat>
    let errnos: UnsafeMutablePointer<Int32>
    private let nextChunk = Atomic<Int>(0)
    private let finishedChunks = Atomic<Int>(0)

    init(fileSystem: FS, handle: DirectoryHandle, names: UnsafeRawPointer, starts: UnsafeBufferPointer<(Int32, Int32)>) {
        self.fileSystem = fileSystem
        self.handle = handle
        self.names = names
        self.starts = starts.baseAddress!
        self.count = starts.count
        self.chunks = (starts.count + Self.chunkSize - 1) / Self.chunkSize
        self.stats = .allocate(capacity: starts.count)
        self.errnos = .allocate(capacity: starts.count)
    }

    deinit {
        stats.deallocate()
        errnos.deallocate()
    }

    /// Every chunk has been taken by some thread.
    var isClaimed: Bool { nextChunk.load(ordering: .relaxed) >= chunks }

    /// Stats chunks until none is left to take.
    func work() {
        while true {
            let chunk = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
            guard chunk < chunks else { return }
            for i in chunk * Self.chunkSize..<min(count, (chunk + 1) * Self.chunkSize) {
                let name = (names + Int(starts[i].0)).assumingMemoryBound(to: CChar.self)
                do throws(Errno) {
                    (stats + i).initialize(to: try fileSystem.stat(handle, name))
                    errnos[i] = 0
                } catch {
                    errnos[i] = error.rawValue
                }
            }
            finishedChunks.add(1, ordering: .releasing)
        }
    }

    /// Returns once every chunk is stat'ed (the caller has run `work` itself first, so
    /// only chunks other threads are in the middle of remain): yields, then naps, so a
    /// slow filesystem does not keep a core spinning.
    func waitUntilFinished() {
        var rounds = 0
        while finishedChunks.load(ordering: .acquiring) < chunks {
            rounds += 1
            if rounds < 100 { sched_yield() } else { usleep(200) }
        }
    }
}

/// What a lister is given to do.
enum ListerWork<FS: FileSystem> {
    case listing(ListingTask)
    case stats(StatChunks<FS>)
}

/// The tasks lister threads read ahead of the walk: newest first (where the depth-first
/// walk goes next), at most `readAhead` finished listings waiting to be taken. A lister
/// offers the subdirectories of what it read at once, so it can run ahead of the walk
/// down a whole branch; the walk cancels what it turns out not to enter.
final class ListerPool<FS: FileSystem>: @unchecked Sendable {
    // @unchecked: every field is touched only with `mutex` held.
    private var stack: [ListingTask] = []
    /// Huge directories being stat'ed in chunks: helped before anything is read ahead.
    private var statJobs: [StatChunks<FS>] = []
    private var waiting = 0
    private var stopped = false
    private let readAhead: Int
    let hasListers: Bool
    private let fileSystem: FS
    /// Listers blocked in `next`, and whether the walk waits in `take`: a wake-up is a
    /// futex call, paid only when someone sleeps.
    private var idleListers = 0
    private var walkWaits = false
    /// Rung for a thread that helps when it has nothing else to do (`ListingHelper`):
    /// it does not sleep on `workAvailable`.
    private let bell: Doorbell?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let workAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let taskDone = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(listers: Int, readAhead: Int = 1024, fileSystem: FS, bell: Doorbell? = nil) {
        self.hasListers = listers > 0
        self.readAhead = readAhead
        self.fileSystem = fileSystem
        self.bell = bell
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
        bell?.ring()
    }

    /// With `mutex` held; the caller rings `bell` once it is let go.
    private func push(_ tasks: [ListingTask]) {
        stack.append(contentsOf: tasks.reversed())
        if idleListers > 0 {
            if tasks.count > 1 { pthread_cond_broadcast(workAvailable) } else { pthread_cond_signal(workAvailable) }
        }
    }

    /// Chunks of a huge directory's stats for other threads to help with.
    func offer(_ job: StatChunks<FS>) {
        guard hasListers else { return }
        pthread_mutex_lock(mutex)
        statJobs.append(job)
        if idleListers > 0 { pthread_cond_broadcast(workAvailable) }
        // A walk waiting for a listing (perhaps this one) helps too.
        if walkWaits { pthread_cond_signal(taskDone) }
        pthread_mutex_unlock(mutex)
        bell?.ring()
    }

    /// A huge directory's stats are done: its buffers need not wait for a lister to drop it.
    func retire(_ job: StatChunks<FS>) {
        guard hasListers else { return }
        pthread_mutex_lock(mutex)
        statJobs.removeAll { $0 === job }
        pthread_mutex_unlock(mutex)
    }

    private func statJob() -> StatChunks<FS>? {
        while let job = statJobs.last {
            if !job.isClaimed { return job }
            statJobs.removeLast()
        }
        return nil
    }

    /// A lister's next work; nil once the pool is stopped.
    func next() -> ListerWork<FS>? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !stopped {
            if let work = nextLocked(largest: nil) { return work }
            idleListers += 1
            pthread_cond_wait(workAvailable, mutex)
            idleListers -= 1
        }
        return nil
    }

    /// Work for a thread that helps between its own tasks: nil when there is none now, or
    /// when the next directory is larger than `largest` bytes (`st_size`).
    func nextIfAny(largest: UInt64?) -> ListerWork<FS>? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return stopped ? nil : nextLocked(largest: largest)
    }

    /// With `mutex` held: a huge directory's stats to help with, else the newest pending
    /// task (if no larger than `largest`), unless `readAhead` listings already wait.
    private func nextLocked(largest: UInt64?) -> ListerWork<FS>? {
        if let job = statJob() { return .stats(job) }
        guard waiting < readAhead else { return nil }
        while let task = stack.last, task.state != .pending { stack.removeLast() }
        guard let task = stack.last, task.stat.size <= largest ?? .max else { return nil }
        stack.removeLast()
        task.state = .running
        return .listing(task)
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
        guard task.state == .running else {
            dispose(outcome)
            pthread_mutex_unlock(mutex)
            return
        }
        task.outcome = outcome
        task.state = .done
        waiting += 1
        if walkWaits { pthread_cond_signal(taskDone) }
        var pushed = false
        if case let .opened(listed) = outcome, hasListers, !listed.children.isEmpty {
            push(listed.children)
            pushed = true
        }
        pthread_mutex_unlock(mutex)
        if pushed { bell?.ring() }
    }

    /// Records the delegate's answer for `task`: its `id`, and `known` names (nil: read
    /// them). False when a thread has already read it and the delegate's names are a
    /// recorded listing the walk must use as it is: the task must be read again. (Other
    /// reads ahead stand; the walk checks where their names came from when it takes them.)
    func adopt(_ task: ListingTask, id: UInt64, known: KnownListing?) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        precondition(task.state != .taken && task.state != .cancelled, "a listing task answered for after it was taken")
        if task.state == .pending {
            task.id = id
            task.known = known
            return true
        }
        return known?.isRecorded != true
    }

    /// The walk will not take `task`: gives back what it holds, and what its own
    /// subdirectories' tasks hold.
    func cancel(_ task: ListingTask) {
        pthread_mutex_lock(mutex)
        cancelLocked(task)
        let room = wakeListersIfRoom()
        pthread_mutex_unlock(mutex)
        if room { bell?.ring() }
    }

    /// Gives back what a listing the walk will not hand over holds.
    func dispose(listed: ListedDirectory) {
        pthread_mutex_lock(mutex)
        dispose(.opened(listed))
        let room = wakeListersIfRoom()
        pthread_mutex_unlock(mutex)
        if room { bell?.ring() }
    }

    /// Cancelled listings may have made room for listers that stopped at `readAhead`:
    /// returns whether there is room and work (for the caller to ring `bell`).
    private func wakeListersIfRoom() -> Bool {
        guard waiting < readAhead && !stack.isEmpty else { return false }
        if idleListers > 0 { pthread_cond_broadcast(workAvailable) }
        return true
    }

    private func cancelLocked(_ task: ListingTask) {
        switch task.state {
        case .pending:
            task.state = .cancelled
            task.parent.release(fileSystem)
        case .running:
            task.state = .cancelled  // `finish` gives its outcome back
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
    /// lister reads it, the calling thread helps with a huge directory's stats or reads
    /// the next pending task rather than sleep.
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
                let roomAgain = waiting == readAhead - 1
                if roomAgain && idleListers > 0 { pthread_cond_broadcast(workAvailable) }
                pthread_mutex_unlock(mutex)
                if roomAgain { bell?.ring() }
                return outcome
            case .running:
                if let job = statJob() {
                    pthread_mutex_unlock(mutex)
                    job.work()
                    pthread_mutex_lock(mutex)
                    continue
                }
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
        let rc = pthread_create(
            &thread, &attributes,
            { arg in
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
