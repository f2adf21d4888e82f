import CChecksum

/// CRC-32C (Castagnoli), the checksum carried by every record.
///
/// The CPU's instruction where there is one, else slicing-by-4 over a table built once (a
/// record of 60 bytes costs about 100 cycles).
public enum CRC32C {
    static let tables: [[UInt32]] = {
        var t = Array(repeating: Array(repeating: UInt32(0), count: 256), count: 4)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<4 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// Whether the CPU computes it (SSE 4.2's `crc32`): about ten times the table's speed.
    static let hardware = evindex_crc32c_hardware() != 0

    /// Continues a checksum over `bytes`; start with `crc` = 0.
    @inline(__always)
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        if hardware {
            return bytes.count == 0 ? crc : ~evindex_crc32c_update(~crc, bytes.baseAddress!, bytes.count)
        }
        return updateWithTable(crc, bytes)
    }

    static func updateWithTable(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        flat.withUnsafeBufferPointer { t in
            var i = 0
            let n = bytes.count
            while i + 4 <= n {
                c ^= bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian
                c =
                    t[768 + Int(c & 0xFF)] ^ t[512 + Int((c >> 8) & 0xFF)]
                    ^ t[256 + Int((c >> 16) & 0xFF)] ^ t[Int(c >> 24)]
                i += 4
            }
            while i < n {
                c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { update(0, bytes) }
    public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { update(0, $0) } }
}
