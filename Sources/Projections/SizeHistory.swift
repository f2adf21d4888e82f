import Events
package import LMDB

/// Rule: the first time a directory's row changes after a run stops (`JobPaused`,
/// `JobCompleted`, `JobFailed`), the row as it was at that stop is kept in `dirHistory`
/// under (dir id, the stop's sequence); each stop also records the highest dir id then.
///
/// Why: "what grew since run R" compares every directory now with the same directory at
/// R's end. Folding the log twice costs the whole tree; this costs what changed. A
/// directory's row at stop X is its image under the first stop at or after X, or, if it
/// has none, its row now (nothing changed it since); a directory whose id is above the
/// highest at X did not exist then (ids are never reused). Epochs are cut at stops, which
/// a live fold and a replay see alike, so both write the same history whatever their
/// transactions; an image already stored is never overwritten, so a fold that starts in
/// the middle of an epoch (a resumed run, a replay continued from its views) writes what
/// the first one did.
public struct SizeEpoch: Sendable, Hashable {
    /// The sequence of the stop that began it.
    public var start: UInt64
    /// No directory that existed at the stop had a higher id.
    public var highest: UInt64
}

extension Views {
    @inline(__always)
    static func withHistoryKey<R>(_ id: UInt64, _ sequence: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var key = (id.bigEndian, sequence.bigEndian)
        return try withUnsafeBytes(of: &key, body)
    }

    /// The stop at `sequence` as the history knows it; nil when no stop is recorded there.
    package func sizeEpoch(_ txn: Transaction, at sequence: UInt64) throws -> SizeEpoch? {
        guard let dirHistory else { return nil }
        return try Self.withHistoryKey(0, sequence) { key in
            try txn.get(dirHistory, key: key) { value in
                var r = ByteReader(buffer: value)
                return SizeEpoch(start: sequence, highest: try r.varint())
            }
        }
    }

    /// The last stop recorded, nil before the first.
    func lastSizeEpoch(_ txn: Transaction) throws -> SizeEpoch? { try sizeEpoch(txn, atOrBefore: .max) }

    /// The last stop at or before `sequence`, nil when there is none.
    package func sizeEpoch(_ txn: Transaction, atOrBefore sequence: UInt64) throws -> SizeEpoch? {
        guard let dirHistory else { return nil }
        return try txn.withCursor(dirHistory) { cursor in
            // Stops are the keys under dir id 0, which sort first (dir ids start at 1).
            let past =
                sequence == .max
                ? try Self.withHistoryKey(1, 0) { try cursor.seek(atLeast: $0) }
                : try Self.withHistoryKey(0, sequence + 1) { try cursor.seek(atLeast: $0) }
            let row = past == nil ? try cursor.last() : try cursor.previous()
            guard let (key, value) = row, key.count == 16, key.loadUnaligned(as: UInt64.self) == 0 else { return nil }
            var r = ByteReader(buffer: value)
            return SizeEpoch(start: UInt64(bigEndian: key.loadUnaligned(fromByteOffset: 8, as: UInt64.self)), highest: try r.varint())
        }
    }

    /// Directory `id`'s row as it was at `epoch`'s stop: nil when it did not exist then.
    package func directory(_ txn: Transaction, _ id: UInt64, asOf epoch: SizeEpoch) throws -> DirectoryRecord? {
        guard id <= epoch.highest else { return nil }
        if let dirHistory {
            let image: DirectoryRecord?? = try txn.withCursor(dirHistory) { cursor in
                guard let (key, value) = try Self.withHistoryKey(id, epoch.start, { try cursor.seek(atLeast: $0) }),
                    key.count == 16, UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)) == id
                else { return nil }
                return .some(value.isEmpty ? nil : try DirectoryRecord(decoding: value))
            }
            if let image { return image }
        }
        return try directory(txn, id)
    }
}

extension Views {
    /// Every directory's row as it was at `epoch`'s stop, by id: each one's first image at
    /// or after the stop, else its row now if it existed then. Costs one pass over the
    /// history and one over the directory-size view: no fold.
    package func directories(_ txn: Transaction, asOf epoch: SizeEpoch) throws -> [UInt64: DirectoryRecord] {
        var rows: [UInt64: DirectoryRecord] = [:]
        if let dirHistory {
            try txn.withCursor(dirHistory) { cursor in
                var row = try Self.withHistoryKey(1, 0) { try cursor.seek(atLeast: $0) }
                while let (key, value) = row, key.count == 16 {
                    let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
                    if id > epoch.highest { break }
                    let stop = UInt64(bigEndian: key.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                    if stop >= epoch.start, rows[id] == nil, !value.isEmpty { rows[id] = try DirectoryRecord(decoding: value) }
                    row = try cursor.next()
                }
            }
        }
        try txn.withCursor(dirs) { cursor in
            var row = try cursor.first()
            while let (key, value) = row {
                let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
                if id > epoch.highest { break }
                if rows[id] == nil { rows[id] = try DirectoryRecord(decoding: value) }
                row = try cursor.next()
            }
        }
        return rows
    }
}

extension ViewFold {
    /// The epoch the fold is in, read from the view once.
    private func currentEpoch(_ txn: Transaction) throws -> SizeEpoch? {
        if !epochKnown {
            epoch = try views.lastSizeEpoch(txn)
            epochKnown = true
        }
        return epoch
    }

    /// Directory `id`'s row is about to change: keep it as it was at the last stop, if this
    /// is its first change since.
    @inline(__always)
    func willChange(_ txn: Transaction, _ id: UInt64) throws {
        guard keepsHistory, views.dirHistory != nil else { return }
        guard let epoch = try currentEpoch(txn), id <= epoch.highest else { return }
        guard imaged.insert(DirectoryKey(id)).inserted else { return }
        if let before = try record(txn, id) { pendingImages.append((id, epoch.start, before)) }
    }

    /// A run stopped at `sequence`: what follows changes the index as of this stop.
    func beginEpoch(_ txn: Transaction, at sequence: UInt64) throws {
        guard keepsHistory, views.dirHistory != nil else { return }
        // Every row must be as of the stop before the next change is imaged.
        try carryDeltas(txn)
        // The highest id of a row that exists at the stop: the same for a live fold and a
        // replay, whatever each has cached or deleted in its open transaction.
        var highest: UInt64 = 0
        try txn.withCursor(views.dirs) { cursor in
            var row = try cursor.last()
            while let (key, _) = row {
                let id = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
                if case .some(.none) = dirty[DirectoryKey(id)] {
                    row = try cursor.previous()
                    continue
                }
                highest = id
                return
            }
        }
        for (key, row) in dirty where row != nil && key.id > highest { highest = key.id }
        let started = SizeEpoch(start: sequence, highest: highest)
        epoch = started
        epochKnown = true
        imaged.removeAll(keepingCapacity: true)
        pendingEpochs.append(started)
    }

    /// Stores the open transaction's stops and images (at `flush`).
    func writeHistory(_ txn: Transaction) throws {
        guard let dirHistory = views.dirHistory, !(pendingEpochs.isEmpty && pendingImages.isEmpty) else { return }
        var w = ByteWriter(capacity: 64)
        for e in pendingEpochs {
            w.reset()
            w.varint(e.highest)
            try Views.withHistoryKey(0, e.start) { key in try txn.put(dirHistory, key: key, value: w.bytes) }
        }
        for image in pendingImages {
            image.row.encoded(into: &w)
            try Views.withHistoryKey(image.id, image.epoch) { key in
                do {
                    try txn.put(dirHistory, key: key, value: w.bytes, flags: .noOverwrite)
                } catch LMDBError.keyExists {
                    // Imaged by an earlier fold of this epoch: the first image is the row at the stop.
                }
            }
        }
        pendingEpochs.removeAll()
        pendingImages.removeAll(keepingCapacity: true)
    }

    /// The transaction aborted: what it imaged is gone, and the epoch is read again.
    func forgetHistory() {
        pendingEpochs.removeAll()
        pendingImages.removeAll(keepingCapacity: true)
        imaged.removeAll(keepingCapacity: true)
        epochKnown = false
        epoch = nil
    }
}
