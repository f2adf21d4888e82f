/// Builds one NDJSON object, fields in the order they are added.
public struct JSONObject {
    private var text = "{"
    private var first = true

    public init() {}

    private mutating func key(_ k: String) {
        if !first { text += "," }
        first = false
        text += "\"" + k + "\":"
    }

    public mutating func add(_ k: String, _ v: String) { key(k); text += jsonString(v) }
    public mutating func add(_ k: String, _ v: UInt64) { key(k); text += String(v) }
    public mutating func add(_ k: String, _ v: Int64) { key(k); text += String(v) }
    public mutating func add(_ k: String, _ v: Int) { key(k); text += String(v) }
    public mutating func add(_ k: String, _ v: UInt32) { key(k); text += String(v) }
    public mutating func add(_ k: String, _ v: Int32) { key(k); text += String(v) }
    public mutating func add(_ k: String, _ v: Bool) { key(k); text += v ? "true" : "false" }
    public mutating func addRaw(_ k: String, _ json: String) { key(k); text += json }

    /// A path: `k` holds it as text (escaped when not UTF-8), `k_b64` its exact bytes
    /// when the text cannot carry them.
    public mutating func addPath(_ k: String, _ bytes: [UInt8]) {
        if let s = String(validating: bytes, as: UTF8.self) {
            add(k, s)
        } else {
            add(k, escapedPath(bytes))
            add(k + "_b64", base64(bytes))
        }
    }

    public var json: String { text + "}" }
}

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
