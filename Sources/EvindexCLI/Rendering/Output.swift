import Events
import JSONFormat
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

/// Buffered standard output: one `fwrite` per 64 KiB, not per line.
struct Output {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func write(_ s: String) {
        var s = s
        s.withUTF8 { buffer.append(contentsOf: $0) }
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func line(_ s: String) { write(s); buffer.append(10) }

    /// Exact bytes, then `terminator` (`-0`'s NUL, or a newline).
    mutating func write(_ bytes: UnsafeRawBufferPointer, terminator: UInt8) {
        buffer.append(contentsOf: bytes)
        buffer.append(terminator)
        if buffer.count >= 1 << 16 { flush() }
    }

    /// A path as `displayPath` shows it, and a newline; printable ASCII (nearly every path)
    /// is copied as it is, without a String.
    mutating func pathLine(_ bytes: UnsafeRawBufferPointer) {
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C }) {
            write(bytes, terminator: 10)
        } else {
            line(displayPath(Array(bytes)))
        }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        writeAll(1, buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Prints one line to standard error.
func printError(_ message: String) {
    writeAll(2, Array("evindex: \(message)\n".utf8))
}

/// Writes every byte to `fd`. A closed pipe (`| head`) ends the process quietly: the
/// reader wanted no more. Any other failure (a full disk, `/dev/full`, a closed
/// descriptor) means the output is cut short, so the command has failed: one line on
/// standard error, exit 1, never exit 0 with a truncated file.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            do throws(Errno) {
                offset += try retryingOnInterrupt { write(fd, raw.baseAddress! + offset, raw.count - offset) }
            } catch {
                if error.rawValue == EPIPE { _exit(0) }
                if fd != 2 {
                    let message = Array("evindex: cannot write the output: \(error)\n".utf8)
                    _ = message.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
                }
                _exit(1)
            }
        }
    }
}

/// 1.2 GB style sizes for people (powers of 1024, like `du -h`).
func humanSize(_ bytes: Int64) -> String {
    let units = ["B", "K", "M", "G", "T", "P"]
    var value = Double(bytes)
    var unit = 0
    while abs(value) >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    if unit == 0 { return "\(bytes)B" }
    let rounded = (value * 10).rounded() / 10
    return "\(rounded)\(units[unit])"
}

/// 2025-01-31 12:00:00 (UTC) from nanoseconds or milliseconds since the epoch.
func timestamp(seconds: Int64) -> String {
    var t = time_t(seconds)
    var parts = tm()
    gmtime_r(&t, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
}
