/// Paths as text for people and for JSON's `path` fields: UTF-8 as it is, anything else
/// escaped so that one path is always one line.

/// Path bytes for display: UTF-8 as is, control characters and invalid bytes escaped
/// (`\n`, `\xE9`), so one entry is always one line.
public func displayPath(_ bytes: [UInt8]) -> String {
    if let s = String(validating: bytes, as: UTF8.self), !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0x5C }) {
        return s
    }
    return escapedPath(bytes)
}

/// Escapes control characters, backslashes and bytes that are not UTF-8.
public func escapedPath(_ bytes: [UInt8]) -> String {
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
