/// How a schema writes and reads the dir ids and metadata inside an event's payload:
/// plainly (schema 1, `PlainFields`) or as differences from the ones before in the block
/// (schema 2, `BlockContext`). Everything else in a payload is the same in both.
protocol FieldCoding {
    mutating func write(parent: UInt64, to w: inout ByteWriter)
    mutating func write(_ m: EntryMetadata, to w: inout ByteWriter)
    mutating func readParent(_ r: inout ByteReader) throws(DecodeError) -> UInt64
    mutating func readMetadata(_ r: inout ByteReader) throws(DecodeError) -> EntryMetadata
    /// Whether `JobStarted` carries the root's metadata (schema 3 and later).
    var carriesRootMetadata: Bool { get }
}

/// Schema 1: dir ids as varints, metadata in full.
struct PlainFields: FieldCoding {
    mutating func write(parent: UInt64, to w: inout ByteWriter) { w.varint(parent) }
    mutating func write(_ m: EntryMetadata, to w: inout ByteWriter) { w.metadata(m) }
    mutating func readParent(_ r: inout ByteReader) throws(DecodeError) -> UInt64 { try r.varint() }
    mutating func readMetadata(_ r: inout ByteReader) throws(DecodeError) -> EntryMetadata { try r.metadata() }
    var carriesRootMetadata: Bool { false }
}

extension ByteWriter {
    /// An event's payload (after its type byte), in the layout of Docs/EVENTS.md.
    mutating func payload<F: FieldCoding>(_ event: Event, _ f: inout F) {
        switch event {
        case let .jobStarted(root, rootDirID, options, version, rootMetadata):
            bytes(root); varint(rootDirID); string(options); string(version)
            if f.carriesRootMetadata {
                byte(rootMetadata == nil ? 0 : 1)
                if let rootMetadata { f.write(rootMetadata, to: &self) }
            }
        case let .jobPaused(reason):
            string(reason)
        case .jobResumed:
            break
        case let .jobCompleted(c):
            for v in [
                c.directories, c.files, c.symlinks, c.others, c.bytes, c.errors,
                c.created, c.updated, c.removed, c.moved,
            ] { varint(v) }
        case let .jobFailed(message):
            string(message)
        case let .snapshotTaken(entries):
            varint(entries)
        case let .directoryListed(dirID, children):
            f.write(parent: dirID, to: &self); varint(children)
        case let .pathRejected(parent, name, rule):
            f.write(parent: parent, to: &self); bytes(name); bytes(rule)
        case let .entryCreated(parent, name, m):
            f.write(parent: parent, to: &self); bytes(name); f.write(m, to: &self)
        case let .entryUpdated(parent, name, old, new):
            f.write(parent: parent, to: &self); bytes(name); f.write(old, to: &self); f.write(new, to: &self)
        case let .entryRemoved(parent, name):
            f.write(parent: parent, to: &self); bytes(name)
        case let .entryMoved(fromParent, fromName, toParent, toName, m):
            f.write(parent: fromParent, to: &self); bytes(fromName)
            f.write(parent: toParent, to: &self); bytes(toName); f.write(m, to: &self)
        case let .nonCriticalError(parent, name, errno, operation):
            f.write(parent: parent, to: &self); bytes(name); zigzag(Int64(errno)); byte(operation.rawValue)
        }
    }
}

extension ByteReader {
    /// The payload of an event of type `type`, as `ByteWriter.payload` wrote it.
    mutating func payload<F: FieldCoding>(_ type: EventType, _ f: inout F) throws(DecodeError) -> Event {
        switch type {
        case .jobStarted:
            let root = try bytes(), rootDirID = try varint(), options = try string(), version = try string()
            var rootMetadata: EntryMetadata?
            if f.carriesRootMetadata {
                switch try byte() {
                case 0: break
                case 1: rootMetadata = try f.readMetadata(&self)
                default: throw DecodeError(sequence: sequence, reason: .invalidValue("root metadata"))
                }
            }
            return .jobStarted(root: root, rootDirID: rootDirID, options: options, version: version, rootMetadata: rootMetadata)
        case .jobPaused:
            return .jobPaused(reason: try string())
        case .jobResumed:
            return .jobResumed
        case .jobCompleted:
            return .jobCompleted(try runCounts())
        case .jobFailed:
            return .jobFailed(message: try string())
        case .snapshotTaken:
            return .snapshotTaken(entries: try varint())
        case .directoryListed:
            return .directoryListed(dirID: try f.readParent(&self), children: try varint())
        case .pathRejected:
            return .pathRejected(parent: try f.readParent(&self), name: try bytes(), rule: try bytes())
        case .entryCreated:
            return .entryCreated(parent: try f.readParent(&self), name: try bytes(), try f.readMetadata(&self))
        case .entryUpdated:
            return .entryUpdated(
                parent: try f.readParent(&self), name: try bytes(),
                old: try f.readMetadata(&self), new: try f.readMetadata(&self))
        case .entryRemoved:
            return .entryRemoved(parent: try f.readParent(&self), name: try bytes())
        case .entryMoved:
            return .entryMoved(
                fromParent: try f.readParent(&self), fromName: try bytes(),
                toParent: try f.readParent(&self), toName: try bytes(), try f.readMetadata(&self))
        case .nonCriticalError:
            return try nonCriticalError(parent: try f.readParent(&self))
        }
    }
}
