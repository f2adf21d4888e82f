/// Bytes appended through a pointer: one capacity check per field, not per byte.
///
/// Rule: `reserve(n)` makes room for `n` bytes and returns where they go; the writer stores
/// them and calls `commit(n)`. Motivation: `[UInt8].append` checks uniqueness and capacity
/// for every byte, and a JSON line of an entry is some 150 appends.
public final class ByteBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    public internal(set) var count = 0

    public init(capacity: Int = 1 << 16) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    @inline(__always)
    func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if count + n > capacity { grow(count + n) }
        return base + count
    }

    private func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    func commit(_ n: Int) { count += n }

    @inline(__always)
    public func append(_ b: UInt8) {
        reserve(1).pointee = b
        count += 1
    }

    @inline(__always)
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let from = bytes.baseAddress, bytes.count > 0 else { return }
        UnsafeMutableRawPointer(reserve(bytes.count)).copyMemory(from: from, byteCount: bytes.count)
        count += bytes.count
    }

    public func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// The bytes from `start` on.
    public func withBytes<R>(from start: Int = 0, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base + start, count: count - start))
    }

    /// Forgets the bytes from `start` on.
    public func removeLast(from start: Int) { count = min(count, start) }
}

/// Builds one NDJSON object, fields in the order they are added, as UTF-8 bytes.
///
/// Rule: everything is written into one `ByteBuffer`: numbers as their digits, ASCII
/// strings and paths byte by byte with JSON's escapes; only text beyond ASCII goes through
/// `String`. `Output.object` builds each object straight into the output's own buffer, so
/// a line costs no allocation and no copy. Not copyable: two copies would write into one
/// buffer.
/// Motivation: `ls -R --json`, `find --json` and `log --json` print a million objects;
/// building a `String` per field made them 20 times slower than the reading.
public struct JSONObject: ~Copyable {
    private let buffer: ByteBuffer
    /// Where the object begins in `buffer`.
    private let start: Int
    private var first = true
    /// Put before every key added while set (`old_` for an update's old metadata).
    public var keyPrefix = ""

    public init() { self.init(appendingTo: ByteBuffer(capacity: 256)) }

    /// An object written at the end of `buffer` (an output's).
    public init(appendingTo buffer: ByteBuffer) {
        self.buffer = buffer
        start = buffer.count
        buffer.append(UInt8(ascii: "{"))
    }

    /// Keys are literals (`StaticString`: their bytes are where the binary holds them), or
    /// built ones, `Key.named`.
    public struct Key {
        private let literal: StaticString?
        private let built: [UInt8]

        @inline(__always)
        init(_ s: StaticString) {
            literal = s
            built = []
        }

        /// A key made at run time (`old_name`, `from_parent`).
        public static func named(_ s: String) -> Key { Key(built: Array(s.utf8)) }

        private init(built: [UInt8]) {
            literal = nil
            self.built = built
        }

        @inline(__always)
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
            if let literal { return body(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)) }
            return built.withUnsafeBytes(body)
        }
    }

    @inline(__always)
    private mutating func key(_ k: Key) {
        k.withBytes { bytes in
            let prefix = keyPrefix.utf8.count
            let n = bytes.count + prefix + 4
            let p = buffer.reserve(n)
            var i = 0
            if !first { p[0] = UInt8(ascii: ","); i = 1 }
            p[i] = UInt8(ascii: "\"")
            i += 1
            if prefix > 0 {
                var keyPrefix = keyPrefix
                keyPrefix.withUTF8 { (p + i).update(from: $0.baseAddress!, count: prefix) }
                i += prefix
            }
            if let from = bytes.baseAddress, bytes.count > 0 { UnsafeMutableRawPointer(p + i).copyMemory(from: from, byteCount: bytes.count) }
            i += bytes.count
            p[i] = UInt8(ascii: "\"")
            p[i + 1] = UInt8(ascii: ":")
            buffer.commit(i + 2)
        }
        first = false
    }

    public mutating func add(_ k: StaticString, _ v: String) { add(Key(k), v) }
    public mutating func add(_ k: StaticString, _ v: UInt64) { key(Key(k)); appendDecimal(v, to: buffer) }
    public mutating func add(_ k: StaticString, _ v: Int64) { add(Key(k), v) }
    public mutating func add(_ k: StaticString, _ v: Int) { add(Key(k), Int64(v)) }
    public mutating func add(_ k: StaticString, _ v: UInt32) { add(k, UInt64(v)) }
    public mutating func add(_ k: StaticString, _ v: Int32) { add(Key(k), Int64(v)) }
    public mutating func add(_ k: StaticString, _ v: Bool) {
        key(Key(k))
        buffer.append(v ? "true" : "false")
    }
    public mutating func addRaw(_ k: StaticString, _ json: String) {
        key(Key(k))
        buffer.append(json)
    }

    public mutating func add(_ k: Key, _ v: String) {
        key(k)
        var v = v
        v.withUTF8 { appendQuoted(UnsafeRawBufferPointer($0)) }
    }
    public mutating func add(_ k: Key, _ v: UInt64) { key(k); appendDecimal(v, to: buffer) }
    @inline(__always)
    public mutating func add(_ k: Key, _ v: Int64) {
        key(k)
        if v < 0 { buffer.append(UInt8(ascii: "-")) }
        appendDecimal(v.magnitude, to: buffer)
    }

    /// A path: `k` holds it as text (escaped when not UTF-8), `k_b64` its exact bytes
    /// when the text cannot carry them.
    public mutating func addPath(_ k: StaticString, _ path: [UInt8]) {
        path.withUnsafeBytes { addPath(Key(k), $0) }
    }

    public mutating func addPath(_ k: StaticString, _ path: UnsafeRawBufferPointer) { addPath(Key(k), path) }

    public mutating func addPath(_ k: Key, _ path: [UInt8]) {
        path.withUnsafeBytes { addPath(k, $0) }
    }

    public mutating func addPath(_ k: Key, _ path: UnsafeRawBufferPointer) {
        if Self.isPlain(path) {
            key(k)
            appendPlain(path)
        } else if path.allSatisfy({ $0 < 0x80 }) {
            key(k)
            appendQuoted(path)
        } else if let s = String(validating: path, as: UTF8.self) {
            add(k, s)
        } else {
            add(k, escapedPath(Array(path)))
            add(.named(k.withBytes { String(decoding: $0, as: UTF8.self) } + "_b64"), base64(Array(path)))
        }
    }

    /// Closes the object: its `}`.
    public consuming func close() { buffer.append(UInt8(ascii: "}")) }

    /// The object's text, closed: `{...}`.
    public var json: String { buffer.withBytes(from: start) { String(decoding: $0, as: UTF8.self) } + "}" }

    /// Whether every byte of `text` is printable ASCII other than `"` and `\\`: a JSON
    /// string as it is. Eight bytes a step (the has-a-zero-byte tests of Hacker's Delight).
    @inline(__always)
    static func isPlain(_ text: UnsafeRawBufferPointer) -> Bool {
        @inline(__always) func hasZero(_ v: UInt64) -> Bool { (v &- 0x0101_0101_0101_0101) & ~v & 0x8080_8080_8080_8080 != 0 }
        @inline(__always) func plain(_ w: UInt64) -> Bool {
            w & 0x8080_8080_8080_8080 == 0 && (w &- 0x2020_2020_2020_2020) & ~w & 0x8080_8080_8080_8080 == 0
                && !hasZero(w ^ 0x2222_2222_2222_2222) && !hasZero(w ^ 0x5C5C_5C5C_5C5C_5C5C)
        }
        var i = 0
        while i + 8 <= text.count {
            if !plain(text.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return false }
            i += 8
        }
        while i < text.count {
            let b = text[i]
            if b < 0x20 || b >= 0x80 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { return false }
            i += 1
        }
        return true
    }

    /// `text`, which `isPlain`, in quotes.
    @inline(__always)
    private mutating func appendPlain(_ text: UnsafeRawBufferPointer) {
        let p = buffer.reserve(text.count + 2)
        p[0] = UInt8(ascii: "\"")
        if let from = text.baseAddress { UnsafeMutableRawPointer(p + 1).copyMemory(from: from, byteCount: text.count) }
        p[text.count + 1] = UInt8(ascii: "\"")
        buffer.commit(text.count + 2)
    }

    /// `text` (valid UTF-8) as a JSON string, as `jsonString` writes it.
    private mutating func appendQuoted(_ text: UnsafeRawBufferPointer) {
        // Nearly every name needs no escape: one copy.
        if !text.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            appendPlain(text)
            return
        }
        buffer.append(UInt8(ascii: "\""))
        for b in text {
            switch b {
            case UInt8(ascii: "\""): buffer.append(UInt8(ascii: "\\")); buffer.append(b)
            case UInt8(ascii: "\\"): buffer.append(b); buffer.append(b)
            case 0x0A: buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "r"))
            case 0x09: buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.append("\\u00")
                buffer.append(hex[Int(b >> 4)])
                buffer.append(hex[Int(b & 15)])
            default: buffer.append(b)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }
}

/// Appends the decimal digits of `value` to `buffer`.
@inline(__always)
public func appendDecimal(_ value: UInt64, to buffer: ByteBuffer) {
    let p = buffer.reserve(20)
    buffer.commit(writeDecimal(value, to: p))
}

/// Appends the decimal digits of `value`, without a `String`.
@inline(__always)
public func appendDecimal(_ value: UInt64, to bytes: inout [UInt8]) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        let n = writeDecimal(value, to: digits.baseAddress!)
        bytes.append(contentsOf: UnsafeBufferPointer(start: digits.baseAddress!, count: n))
    }
}

/// Writes the decimal digits of `value` at `p` (room for 20) and returns how many: two
/// digits a step, from a table of "00" to "99" (a nanosecond time has 19 digits, and a
/// JSON line of an entry seven numbers).
@inline(__always)
func writeDecimal(_ value: UInt64, to p: UnsafeMutablePointer<UInt8>) -> Int {
    if value < 10 {
        p[0] = UInt8(truncatingIfNeeded: value) &+ 48
        return 1
    }
    // Digits from the bit length (log10 2 ≈ 1233 / 4096), one comparison to correct it.
    let guess = ((64 - value.leadingZeroBitCount) &* 1233) >> 12
    let length = guess &+ 1 &- (value < powersOfTen(guess) ? 1 : 0)
    var n = value
    var i = length
    twoDigitPairs.withUnsafeBufferPointer { pairs in
        while n >= 100 {
            let r = Int(truncatingIfNeeded: n % 100) &* 2
            n /= 100
            i -= 2
            p[i] = pairs[r]
            p[i + 1] = pairs[r + 1]
        }
        if n >= 10 {
            let r = Int(truncatingIfNeeded: n) &* 2
            p[0] = pairs[r]
            p[1] = pairs[r + 1]
        } else {
            p[0] = UInt8(truncatingIfNeeded: n) &+ 48
        }
    }
    return length
}

@inline(__always)
private func powersOfTen(_ i: Int) -> UInt64 {
    withUnsafeBytes(of: powersOfTenTable) { $0.load(fromByteOffset: i &* 8, as: UInt64.self) }
}

private let powersOfTenTable:
    (
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
    ) = (
        1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000,
        10_000_000_000, 100_000_000_000, 1_000_000_000_000, 10_000_000_000_000, 100_000_000_000_000,
        1_000_000_000_000_000, 10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000,
        10_000_000_000_000_000_000
    )

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
