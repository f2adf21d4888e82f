/// `v` as lower-case hexadecimal, zero-padded to its full width (8 digits for 32 bits,
/// 16 for 64): how checksums and digests are shown.
public func fixedWidthHex<T: FixedWidthInteger & UnsignedInteger>(_ v: T) -> String {
    let digits = String(v, radix: 16)
    return String(repeating: "0", count: T.bitWidth / 4 - digits.count) + digits
}
