import Events
import JSONFormat
import Traversal

#if canImport(Glibc)
    import Glibc
#endif

/// Buffered standard output: one `write` per 64 KiB, not per line; the lines a command
/// prints by the million (`ls -R`, `find`, `--json`) are built in its buffer, without a
/// `String` or an allocation per line.
struct Output {
    private let buffer = ByteBuffer(capacity: 1 << 17)

    init() { Self.enlargePipe() }

    /// Standard output that is a pipe gets a 1 MiB buffer (F_SETPIPE_SZ, Linux's 1031; the
    /// default is 64 KiB): a million lines to `jq` or `wc` then cost a sixth of the
    /// context switches. Anything else (a file, a terminal) refuses it, harmlessly.
    private static func enlargePipe() {
        _ = pipeEnlarged
    }

    private static let pipeEnlarged: Int32 = fcntl(1, 1031, 1 << 20)

    mutating func write(_ s: String) {
        buffer.append(s)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func line(_ s: String) { write(s); buffer.append(10) }

    /// One JSON object and a newline, built in place at the end of the buffer; nothing of
    /// it when `build` throws.
    mutating func object(_ build: (inout JSONObject) throws -> Void) rethrows {
        let start = buffer.count
        var o = JSONObject(appendingTo: buffer)
        do {
            try build(&o)
        } catch {
            buffer.removeLast(from: start)
            throw error
        }
        o.close()
        buffer.append(10)
        if buffer.count >= 1 << 16 { flush() }
    }

    /// `ls`'s line for an entry: with `diskUsage`, the bytes it takes on disk (st_blocks ×
    /// 512) right-aligned in 14 columns; a kind letter (`-` file, `d` dir, `l` symlink,
    /// `?` other), `!` when `stale` (else a space), the size right-aligned in 14 columns,
    /// the mtime (UTC) and the path.
    mutating func entryLine(_ path: UnsafeRawBufferPointer, _ m: EntryMetadata, diskUsage: Bool = false, stale: Bool = false) {
        if diskUsage {
            rightAligned(m.diskBytes, width: 14)
            buffer.append(UInt8(ascii: " "))
        }
        let kind: UInt8
        switch m.kind {
        case .file: kind = UInt8(ascii: "-")
        case .directory: kind = UInt8(ascii: "d")
        case .symlink: kind = UInt8(ascii: "l")
        case .other: kind = UInt8(ascii: "?")
        }
        buffer.append(kind)
        buffer.append(stale ? UInt8(ascii: "!") : UInt8(ascii: " "))
        rightAligned(m.size, width: 14)
        buffer.append(UInt8(ascii: " "))
        buffer.append(UInt8(ascii: " "))
        appendTimestamp(seconds: m.mtimeNs / 1_000_000_000)  // as `timestamp(seconds:)` is given it
        buffer.append(UInt8(ascii: " "))
        buffer.append(UInt8(ascii: " "))
        pathLine(path)
    }

    private mutating func rightAligned(_ value: UInt64, width: Int) {
        var digits = 1
        var n = value
        while n >= 10 { n /= 10; digits += 1 }
        for _ in 0..<max(0, width - digits) { buffer.append(UInt8(ascii: " ")) }
        appendDecimal(value, to: buffer)
    }

    /// `timestamp(seconds:)`'s text, `2025-01-31 12:00:00`, appended as bytes.
    private mutating func appendTimestamp(seconds: Int64) {
        let days = floorDivide(seconds, 86_400), rest = seconds - days * 86_400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        if year < 0 { buffer.append(UInt8(ascii: "-")) }
        appendDecimal(year.magnitude, to: buffer)
        func two(_ separator: UInt8, _ value: Int64) {
            buffer.append(separator)
            buffer.append(UInt8(truncatingIfNeeded: value / 10) &+ 48)
            buffer.append(UInt8(truncatingIfNeeded: value % 10) &+ 48)
        }
        two(UInt8(ascii: "-"), month)
        two(UInt8(ascii: "-"), day)
        two(UInt8(ascii: " "), rest / 3600)
        two(UInt8(ascii: ":"), rest / 60 % 60)
        two(UInt8(ascii: ":"), rest % 60)
    }

    /// Exact bytes, then `terminator` (`-0`'s NUL, or a newline).
    mutating func write(_ bytes: UnsafeRawBufferPointer, terminator: UInt8) {
        buffer.append(bytes)
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
        guard buffer.count > 0 else { return }
        buffer.withBytes { writeAll(1, $0) }
        buffer.removeLast(from: 0)
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
    bytes.withUnsafeBytes { writeAll(fd, $0) }
}

func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer) {
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

/// 1.2 GB style sizes for people (powers of 1024, like `du -h`).
func humanSize(_ bytes: UInt64) -> String {
    let units = ["B", "K", "M", "G", "T", "P", "E"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    if unit == 0 { return "\(bytes)B" }
    let rounded = (value * 10).rounded() / 10
    return "\(rounded)\(units[unit])"
}

/// 2025-01-31 12:00:00 (UTC) from nanoseconds or milliseconds since the epoch.
/// `n` and its noun, singular for exactly one: "1 file", "2 files", "1 entry".
func counted<N: BinaryInteger>(_ n: N, _ noun: String) -> String {
    guard n != 1 else { return "1 " + noun }
    return "\(n) " + (noun.hasSuffix("y") ? noun.dropLast() + "ies" : noun + "s")
}

func timestamp(seconds: Int64) -> String {
    var t = time_t(seconds)
    var parts = tm()
    gmtime_r(&t, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
}

/// Division rounding toward minus infinity (times before 1970 are negative).
func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
