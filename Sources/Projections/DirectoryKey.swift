/// A directory id as a key of a `Set` or `Dictionary`, hashed with a multiply-xorshift
/// mix of the id and the table's seed instead of SipHash.
///
/// The fold and the change detector look directory ids up several times per entry, and
/// SipHash was about 7 % of a first index's instructions. The ids are the index's own,
/// never chosen by someone who could aim them at one bucket.
public struct DirectoryKey: Hashable, Sendable {
    public let id: UInt64

    @inline(__always)
    public init(_ id: UInt64) { self.id = id }

    public func hash(into hasher: inout Hasher) { hasher.combine(id) }

    // The tables ask for this one (with their own seed), not `hash(into:)`.
    @inline(__always)
    public func _rawHashValue(seed: Int) -> Int {
        var x = id ^ UInt64(UInt(bitPattern: seed))
        x = (x ^ (x >> 33)) &* 0xff51_afd7_ed55_8ccd
        x = (x ^ (x >> 33)) &* 0xc4ce_b9fe_1a85_ec53
        return Int(truncatingIfNeeded: x ^ (x >> 33))
    }
}
