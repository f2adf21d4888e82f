import Events
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

/// Path bytes for display: UTF-8 as is, control characters and invalid bytes escaped
/// (`\n`, `\xE9`), so one entry is always one line.
func displayPath(_ bytes: [UInt8]) -> String {
    if let s = String(validating: bytes, as: UTF8.self), !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0x5C }) {
        return s
    }
    return escapedPath(bytes)
}

/// Escapes control characters, backslashes and bytes that are not UTF-8.
func escapedPath(_ bytes: [UInt8]) -> String {
    var out = ""
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        let length = utf8SequenceLength(bytes, at: i)
        if length > 1 {
            out += String(decoding: bytes[i..<i + length], as: UTF8.self)
            i += length
            continue
        }
        switch b {
        case 0x5C: out += "\\\\"
        case 0x0A: out += "\\n"
        case 0x09: out += "\\t"
        case 0x0D: out += "\\r"
        case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(b))
        default: out += "\\x" + hex2(b)
        }
        i += 1
    }
    return out
}

/// The length of a valid multi-byte UTF-8 sequence at `i`, else 1.
private func utf8SequenceLength(_ bytes: [UInt8], at i: Int) -> Int {
    let b = bytes[i]
    let n: Int
    switch b {
    case 0xC2...0xDF: n = 2
    case 0xE0...0xEF: n = 3
    case 0xF0...0xF4: n = 4
    default: return 1
    }
    guard i + n <= bytes.count else { return 1 }
    return String(validating: bytes[i..<i + n], as: UTF8.self) == nil ? 1 : n
}

private func hex2(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}

/// Builds one NDJSON object, fields in the order they are added.
struct JSONObject {
    private var text = "{"
    private var first = true

    private mutating func key(_ k: String) {
        if !first { text += "," }
        first = false
        text += "\"" + k + "\":"
    }

    mutating func add(_ k: String, _ v: String) { key(k); text += jsonString(v) }
    mutating func add(_ k: String, _ v: UInt64) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Int64) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Int) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: UInt32) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Int32) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Bool) { key(k); text += v ? "true" : "false" }
    mutating func addRaw(_ k: String, _ json: String) { key(k); text += json }

    /// A path: `k` holds it as text (escaped when not UTF-8), `k_b64` its exact bytes
    /// when the text cannot carry them.
    mutating func addPath(_ k: String, _ bytes: [UInt8]) {
        if let s = String(validating: bytes, as: UTF8.self) {
            add(k, s)
        } else {
            add(k, escapedPath(bytes))
            add(k + "_b64", base64(bytes))
        }
    }

    var json: String { text + "}" }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let h = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 3 <= bytes.count {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        for shift in [18, 12, 6, 0] { out.append(table[Int((n >> UInt32(shift)) & 63)]) }
        i += 3
    }
    let rest = bytes.count - i
    if rest > 0 {
        var n = UInt32(bytes[i]) << 16
        if rest == 2 { n |= UInt32(bytes[i + 1]) << 8 }
        out.append(table[Int((n >> 18) & 63)])
        out.append(table[Int((n >> 12) & 63)])
        out.append(rest == 2 ? table[Int((n >> 6) & 63)] : UInt8(ascii: "="))
        out.append(UInt8(ascii: "="))
    }
    return String(decoding: out, as: UTF8.self)
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
