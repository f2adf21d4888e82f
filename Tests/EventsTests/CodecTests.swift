import Events
import Foundation
import TestSupport
import Testing

struct CodecTests {
    @Test(arguments: Array(Samples.events.enumerated()))
    func everyEventRoundTrips(_ sample: (offset: Int, element: Event)) throws {
        let record = EventRecord(sequence: UInt64(sample.offset) * 1_000_003 + 1, run: 77, timeMs: 1_796_000_000_000, event: sample.element)
        let bytes = RecordEncoder.encoded(record)
        #expect(try RecordDecoder.decode(sequence: record.sequence, value: bytes) == record)
    }

    @Test func everyEventTypeHasASample() {
        #expect(Set(Samples.events.map(\.type)) == Set(EventType.allCases))
    }

    /// Any flipped byte is caught, and the error names the record's sequence number.
    @Test func flippedByteIsCaughtWithItsSequence() throws {
        let record = EventRecord(sequence: 31337, run: 1, timeMs: 5, event: .entryCreated(parent: 1, name: Array("f".utf8), Samples.metadata))
        let bytes = RecordEncoder.encoded(record)
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x10
            do {
                _ = try RecordDecoder.decode(sequence: 31337, value: damaged)
                Issue.record("flipping byte \(i) went unnoticed")
            } catch {
                #expect(error.sequence == 31337)
                #expect("\(error)".contains("31337"))
            }
        }
        // The same bytes under another key fail too: the key is covered.
        #expect(throws: DecodeError.self) { try RecordDecoder.decode(sequence: 31338, value: bytes) }
    }

    @Test func newerSchemaVersionIsRefusedNotMisread() throws {
        var bytes = RecordEncoder.encoded(EventRecord(sequence: 4, run: 1, timeMs: 0, event: .jobResumed))
        bytes[0] = RecordFormat.schemaVersion + 1
        bytes = Samples.resealed(bytes, sequence: 4)
        do {
            _ = try RecordDecoder.decode(sequence: 4, value: bytes)
            Issue.record("a newer record was decoded")
        } catch {
            #expect(error.reason == .newerSchema(RecordFormat.schemaVersion + 1))
            #expect("\(error)".contains("upgrade"))
        }
    }

    /// A damaged version byte is corruption, not a newer schema: the checksum says so.
    @Test func damagedVersionByteIsReportedAsCorruption() throws {
        var bytes = RecordEncoder.encoded(EventRecord(sequence: 4, run: 1, timeMs: 0, event: .jobResumed))
        bytes[0] = 17
        do {
            _ = try RecordDecoder.decode(sequence: 4, value: bytes)
            Issue.record("a damaged record was decoded")
        } catch {
            guard case .checksumMismatch = error.reason else {
                Issue.record("reported as \(error.reason)"); return
            }
        }
    }

    /// The decoder never traps, whatever the bytes: random records and mutated real ones,
    /// with their checksum made valid so decoding goes past the check.
    @Test func decoderSurvivesArbitraryBytes() {
        var rng = SystemRandomNumberGenerator()
        let valid = Samples.events.map { RecordEncoder.encoded(EventRecord(sequence: 1, run: 1, timeMs: 1, event: $0)) }
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if bytes.count > 1 && round % 4 == 0 { bytes[0] = 1 }
            } else {
                bytes = valid.randomElement(using: &rng)!
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[i] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0..<min(6, bytes.count), using: &rng)) }
            }
            if bytes.count > 5 {
                // Re-seal so the structural decoder is exercised, not only the checksum.
                bytes = Samples.resealed(bytes, sequence: 1)
            }
            _ = try? RecordDecoder.decode(sequence: 1, value: bytes)
        }
    }

    /// CRC-32C check value from RFC 3720 (iSCSI): "123456789" → 0xE3069283.
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }
}

/// A log written by schema version 1 stays readable forever.
struct GoldenLogTests {
    static let path = Support.fixtures.appendingPathComponent("golden-v1.log").path

    /// The records of the fixture: sequence i+1 holds `Samples.events[i]`.
    static var expected: [EventRecord] {
        Samples.events.enumerated().map { i, e in
            EventRecord(sequence: UInt64(i + 1), run: 1, timeMs: 1_796_000_000_000 + Int64(i), event: e)
        }
    }

    /// Framing: repeated [u32 LE value length][8-byte BE sequence][value].
    static func frame(_ records: [EventRecord]) -> [UInt8] {
        var out: [UInt8] = []
        for r in records {
            let value = RecordEncoder.encoded(r)
            withUnsafeBytes(of: UInt32(value.count).littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: r.sequence.bigEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: value)
        }
        return out
    }

    @Test func schemaVersion1LogIsReadForever() throws {
        if ProcessInfo.processInfo.environment["EVINDEX_RECORD_GOLDEN"] == "1" {
            try Data(Self.frame(Self.expected)).write(to: URL(fileURLWithPath: Self.path))
        }
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.path)))
        var decoded: [EventRecord] = []
        var i = 0
        while i < bytes.count {
            let length = Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24
            let sequence = bytes[i + 4..<i + 12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            decoded.append(try RecordDecoder.decode(sequence: sequence, value: Array(bytes[i + 12..<i + 12 + length])))
            i += 12 + length
        }
        #expect(decoded == Self.expected)
        // This build still writes version 1 byte for byte; a format change must bump the version.
        if RecordFormat.schemaVersion == 1 {
            #expect(Self.frame(Self.expected) == bytes)
        }
    }
}
