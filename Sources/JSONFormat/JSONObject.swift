/// Builds one NDJSON object, fields in the order they are added, as UTF-8 bytes.
///
/// Rule: everything is appended to one byte array: numbers as their digits, ASCII strings
/// and paths byte by byte with JSON's escapes; only text beyond ASCII goes through
/// `String`. A writer that prints many objects keeps one and calls `reset()` for each, so
/// a line costs no allocation (`Output.object`).
/// Motivation: `ls -R --json`, `find --json` and `log --json` print a million objects;
/// building a `String` per field made them 20 times slower than the reading.
public struct JSONObject {
    public private(set) var bytes: [UInt8]
    private var first = true
    /// Put before every key added while set (`old_` for an update's old metadata).
    public var keyPrefix = ""

    public init() {
        bytes = [UInt8(ascii: "{")]
        bytes.reserveCapacity(256)
    }

    /// Empties the object for the next one, keeping its storage.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        bytes.append(UInt8(ascii: "{"))
        first = true
    }

    @inline(__always)
    private mutating func key(_ k: String) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        if !keyPrefix.isEmpty {
            var p = keyPrefix
            p.withUTF8 { bytes.append(contentsOf: $0) }
        }
        var k = k
        k.withUTF8 { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func add(_ k: String, _ v: String) {
        key(k)
        var v = v
        v.withUTF8 { appendQuoted(UnsafeRawBufferPointer($0)) }
    }
    public mutating func add(_ k: String, _ v: UInt64) { key(k); appendDigits(v) }
    public mutating func add(_ k: String, _ v: Int64) {
        key(k)
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDigits(v.magnitude)
    }
    public mutating func add(_ k: String, _ v: Int) { add(k, Int64(v)) }
    public mutating func add(_ k: String, _ v: UInt32) { add(k, UInt64(v)) }
    public mutating func add(_ k: String, _ v: Int32) { add(k, Int64(v)) }
    public mutating func add(_ k: String, _ v: Bool) {
        key(k)
        var text = v ? "true" : "false"
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }
    public mutating func addRaw(_ k: String, _ json: String) {
        key(k)
        var json = json
        json.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// A path: `k` holds it as text (escaped when not UTF-8), `k_b64` its exact bytes
    /// when the text cannot carry them.
    public mutating func addPath(_ k: String, _ path: [UInt8]) {
        path.withUnsafeBytes { addPath(k, $0) }
    }

    public mutating func addPath(_ k: String, _ path: UnsafeRawBufferPointer) {
        if path.allSatisfy({ $0 < 0x80 }) {
            key(k)
            appendQuoted(path)
        } else if let s = String(validating: path, as: UTF8.self) {
            add(k, s)
        } else {
            add(k, escapedPath(Array(path)))
            add(k + "_b64", base64(Array(path)))
        }
    }

    /// The object's text, closed: `{...}`.
    public var json: String { String(decoding: bytes, as: UTF8.self) + "}" }

    /// `text` (valid UTF-8) as a JSON string, as `jsonString` writes it.
    private mutating func appendQuoted(_ text: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "\""))
        // Nearly every name needs no escape: one copy.
        if !text.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: text)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for b in text {
            switch b {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(b)
            case UInt8(ascii: "\\"): bytes.append(b); bytes.append(b)
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                for c in "\\u00".utf8 { bytes.append(c) }
                bytes.append(hex[Int(b >> 4)])
                bytes.append(hex[Int(b & 15)])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendDigits(_ value: UInt64) {
        appendDecimal(value, to: &bytes)
    }
}

/// Appends the decimal digits of `value`, without a `String`: two digits a step, from a
/// table of "00" to "99" (a nanosecond time has 19 digits, and a JSON line of an entry
/// seven numbers).
@inline(__always)
public func appendDecimal(_ value: UInt64, to bytes: inout [UInt8]) {
    if value < 10 {
        bytes.append(UInt8(truncatingIfNeeded: value) &+ 48)
        return
    }
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
    withUnsafeMutableBytes(of: &digits) { buffer in
        var n = value
        var i = 24
        twoDigitPairs.withUnsafeBufferPointer { pairs in
            while n >= 100 {
                let r = Int(truncatingIfNeeded: n % 100) &* 2
                n /= 100
                i -= 2
                buffer[i] = pairs[r]
                buffer[i + 1] = pairs[r + 1]
            }
            if n >= 10 {
                let r = Int(truncatingIfNeeded: n) &* 2
                i -= 2
                buffer[i] = pairs[r]
                buffer[i + 1] = pairs[r + 1]
            } else {
                i -= 1
                buffer[i] = UInt8(truncatingIfNeeded: n) &+ 48
            }
        }
        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i...]))
    }
}

private let twoDigitPairs: [UInt8] = {
    var pairs: [UInt8] = []
    for i in 0..<100 {
        let tens = UInt8(i / 10), ones = UInt8(i % 10)
        pairs.append(tens + 48)
        pairs.append(ones + 48)
    }
    return pairs
}()

public func jsonString(_ s: String) -> String {
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

public func base64(_ bytes: [UInt8]) -> String {
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
