import Events
internal import LMDB
import Projections
import Traversal

/// Rejections are compared like entries (Docs/RESCANS.md, rule 12): the rules judge every
/// name at every listing, and only a rejection that is new, names another rule, or whose
/// name left the directory becomes an event, so a rescan with the same rules over the same
/// tree writes none.
extension ChangeDetector {
    /// Records new or changed rejections, and rejected names that left the directory.
    mutating func compareRejections(
        _ listing: inout DirectoryListing, _ txn: Transaction, isFresh: Bool, complete: Bool,
        unreadable: Set<[UInt8]>, batch: inout WriterBatch, base: UnsafeRawPointer
    ) throws {
        var known: [[UInt8]: [UInt8]] = [:]
        if !isFresh && checkRejections {
            try views.forEachRejection(txn, of: listing.directoryID) { name, rule in known[Array(name)] = Array(rule) }
        }
        for r in listing.rejected {
            let name = Array(UnsafeRawBufferPointer(start: base + Int(r.nameStart), count: Int(r.nameLength)))
            if let old = known.removeValue(forKey: name), old == r.rule { continue }
            batch.rules.append(r.rule)
            batch.changes.append(
                Change(
                    kind: .rejected, nameStart: r.nameStart, nameLength: r.nameLength,
                    metadata: EntryMetadata(kind: .other, mode: 0, inode: 0, device: 0, size: 0, mtimeNs: 0, ctimeNs: 0),
                    detail: Int32(batch.rules.count - 1)))
            if batch.changes.count >= batchLimit { flush(&batch) }
        }
        guard !known.isEmpty, complete else { return }
        // Names now indexed drop their rejection as they are created; the rest are gone.
        for e in listing.entries {
            known.removeValue(forKey: Array(UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength))))
        }
        let lifted = known.keys.filter { !unreadable.contains($0) }.map {
            (
                parent: listing.directoryID, name: $0,
                change: Change(
                    kind: .rejectionLifted, nameStart: 0, nameLength: 0,
                    metadata: EntryMetadata(kind: .other, mode: 0, inode: 0, device: 0, size: 0, mtimeNs: 0, ctimeNs: 0)),
                from: MoveSource?.none
            )
        }
        if !lifted.isEmpty { send(lifted) }
    }
}
