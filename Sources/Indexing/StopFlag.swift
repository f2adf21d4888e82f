import Synchronization

/// A flag that stops the walker: raised by the writer after a failure, or by a signal.
///
/// The walk looks at it before each directory, never in the middle of one: a stopped run
/// ends on a listing boundary, which is where a resumed run picks up.
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public var isSet: Bool { flag.load(ordering: .relaxed) || StopSignals.isRaised }
    /// Stops the walk at the next directory.
    public func set() { flag.store(true, ordering: .relaxed) }
}
