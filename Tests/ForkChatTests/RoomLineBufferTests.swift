import Testing

@testable import ForkChat

/// The framer as it was before lines were made visible in place (a raw
/// line in an array, then `sanitizeLine` and `cutAtCharacter` on the whole
/// of it): the reference the reader's in-place framer must equal, byte for
/// byte.
private struct ReferenceFramer {
  var raw: [UInt8] = []
  var discarding = false
  var telnet = TelnetFilter()

  mutating func feed(_ bytes: [UInt8]) -> [ClientInput] {
    var found: [ClientInput] = []
    for byte in bytes {
      switch telnet.take(byte) {
      case .data(let byte): take(byte, into: &found)
      case .answer(let reply): found.append(.telnet(reply))
      case .interrupt: discardPartial()
      case .none: break
      }
    }
    return found
  }

  mutating func take(_ byte: UInt8, into found: inout [ClientInput]) {
    if byte == 10 {
      if discarding {
        discarding = false
      } else if let line = finish() {
        found.append(.line(line))
      }
      return
    }
    if discarding { return }
    if raw.count == RoomLimits.lineBytes + 1 {
      found.append(.line(RoomLine(text: cutAtCharacter(sanitizeLine(raw), RoomLimits.lineBytes), cut: true)))
      raw.removeAll()
      discarding = true
      return
    }
    raw.append(byte)
  }

  mutating func flushPartial() -> RoomLine? {
    discarding = false
    return finish()
  }

  mutating func discardPartial() {
    raw.removeAll()
    discarding = false
  }

  mutating func finish() -> RoomLine? {
    defer { raw.removeAll() }
    if raw.last == 13 { raw.removeLast() }
    if raw.isEmpty { return nil }
    var text = sanitizeLine(raw)
    let cut = text.count > RoomLimits.lineBytes
    if cut { text = cutAtCharacter(text, RoomLimits.lineBytes) }
    return RoomLine(text: text, cut: cut)
  }
}

/// SplitMix64: the same bytes on every run.
private struct Seeded: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("Room: lines made visible in place")
struct RoomLineBufferTests {
  /// What a client may send, piece by piece: every kind of byte the
  /// cleaner treats apart, and the pieces that cross the limit.
  static let pieces: [[UInt8]] = [
    Array("hello".utf8), Array(" ".utf8), [9], [10], [13], [13, 10], [0], [7], [27], Array("\u{1B}[2J".utf8),
    [127], Array("é".utf8), Array("✓".utf8), Array("😀".utf8), Array("\u{9B}".utf8), Array("\u{85}".utf8),
    Array("\u{202E}".utf8), Array("\u{2066}".utf8), Array("\u{2069}".utf8), Array("\u{202D}".utf8),
    [0x9B], [0x80], [0xBF], [0xC0], [0xC1], [0xC2], [0xE0], [0xE0, 0x80], [0xE0, 0xA0], [0xED, 0xA0, 0x80],
    [0xE6], [0xE6, 0xBC], [0xF0], [0xF0, 0x9F], [0xF0, 0x9F, 0x98], [0xF4, 0x90, 0x80, 0x80], [0xF5], [0xFE],
    [255, 255], [255, 244], [255, 253, 6], [255, 253, 24], [255, 251, 1], [255, 250, 24, 1, 255, 240],
    [255, 241],
    [UInt8](repeating: 0x78, count: 1000), [UInt8](repeating: 0x1B, count: 300),
    Array(String(repeating: "é", count: 700).utf8), Array(String(repeating: "😀", count: 300).utf8),
    [UInt8](repeating: 0xFF, count: 101), Array(String(repeating: "\u{9B}", count: 200).utf8),
    Array("/who".utf8), Array("/HELP".utf8), Array("//who".utf8), Array("/nick".utf8), Array("/me".utf8),
  ]

  /// 1 to 40 of `pieces`, one after the other.
  private static func randomStream(using random: inout Seeded) -> [UInt8] {
    var stream: [UInt8] = []
    for _ in 0..<Int.random(in: 1...40, using: &random) {
      stream += pieces.randomElement(using: &random)!
    }
    return stream
  }

  /// Feeds `stream` to both framers in the same chunks; expects the same
  /// inputs, the same partial line at each step, and the same end.
  func compare(_ stream: [UInt8], chunks: [Int], flushAt: Set<Int> = []) {
    var reference = ReferenceFramer()
    var framer = LineFramer()
    var offset = 0
    var step = 0
    while offset < stream.count {
      let size = chunks.isEmpty ? stream.count : max(1, chunks[step % chunks.count])
      let chunk = Array(stream[offset..<min(stream.count, offset + size)])
      offset += chunk.count
      let expected = reference.feed(chunk)
      let got = chunk.withUnsafeBytes { framer.feed($0) }
      let same = got == expected  // (not in the #expect: a failure would print both, thousands of bytes)
      #expect(same, "stream \(stream.prefix(40)) at \(offset)")
      #expect(framer.hasPartial == !reference.raw.isEmpty)
      if flushAt.contains(step) {
        let same = framer.flushPartial() == reference.flushPartial()
        #expect(same, "stream \(stream.prefix(40)) flushed at \(offset)")
      }
      step += 1
    }
    let same = framer.flushPartial() == reference.flushPartial()
    #expect(same, "stream \(stream.prefix(40)) at its end")
  }

  @Test func equalsSanitizeLineAndCutAtCharacterOnRandomStreams() {
    var random = Seeded(state: 20)
    for _ in 0..<400 {
      let stream = Self.randomStream(using: &random)
      let chunks = (0..<4).map { _ in Int.random(in: 1...700, using: &random) }
      let flushAt = Set((0..<3).map { _ in Int.random(in: 0...20, using: &random) })
      compare(stream, chunks: chunks)
      compare(stream, chunks: [], flushAt: flushAt)
      compare(stream, chunks: [1])
    }
  }

  @Test func equalsOnEveryByteAndPairOfBytes() {
    for first in 0...255 {
      for second in stride(from: 0, through: 255, by: 1) {
        compare([65, UInt8(first), UInt8(second)], chunks: [1])
        compare([UInt8(first), UInt8(second), 10], chunks: [])
      }
    }
  }

  /// Lines that end just at, just before and just past the limit, with a
  /// character of 1 to 4 bytes or an escape of 2, 4 or 8 across it, and a
  /// "\r" or a cut UTF-8 sequence as the last byte.
  @Test func equalsAtEveryCutPoint() {
    let tails: [[UInt8]] = [
      Array("é".utf8), Array("✓".utf8), Array("😀".utf8), [27], [0x9B], Array("\u{9B}".utf8), [13], [0xE6],
      [0xF0, 0x9F], Array("x".utf8),
    ]
    for length in (RoomLimits.lineBytes - 9)...(RoomLimits.lineBytes + 3) {
      for tail in tails {
        for end: [UInt8] in [[10], [13, 10], [], Array("yz\n".utf8), [13, 13, 10]] {
          let line = [UInt8](repeating: 0x61, count: length) + tail + end + Array("next\n".utf8)
          compare(line, chunks: [])
          compare(line, chunks: [997])
        }
      }
    }
  }

  /// As the reader does it: each chunk read into `readSpace` (at most
  /// what it has room for, as read(2)), the line made visible in the same
  /// page, unread bytes moved to the spare page when the line would
  /// overtake them; each line's record built at once. The same inputs as
  /// the reference, and records as `RoomRecord` writes them.
  func compareAsTheReader(_ stream: [UInt8], chunks: [Int], shortOfThePage: [Int] = []) {
    let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
    let spare = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
    defer {
      page.deallocate()
      spare.deallocate()
    }
    var reference = ReferenceFramer()
    var framer = InPlaceFramer(storage: page, spare: spare)
    var offset = 0
    var step = 0
    var same = true
    while offset < stream.count {
      // A read that stops a few bytes short of the page's end, or one of
      // the sizes given.
      let size =
        shortOfThePage.isEmpty
        ? chunks[step % chunks.count]
        : framer.readSpace().count - shortOfThePage[step % shortOfThePage.count]
      var chunk = Array(stream[offset..<min(stream.count, offset + max(1, size))])
      offset += chunk.count
      step += 1
      var expected = reference.feed(chunk).map { input -> [UInt8] in
        switch input {
        case .line(let line): RoomRecord.say(client: 42, line).bytes
        case .telnet(let reply): RoomRecord.telnet(client: 42, reply).bytes
        }
      }
      while !chunk.isEmpty {
        let space = framer.readSpace()
        let count = min(space.count, chunk.count)
        chunk.withUnsafeBytes { space.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        chunk.removeFirst(count)
        framer.feed(UnsafeRawBufferPointer(rebasing: space[..<count])) { input in
          let got: [UInt8] =
            switch input {
            case .line(let line): Array(line.record(client: 42))
            case .telnet(let reply): RoomRecord.telnet(client: 42, reply).bytes
            }
          if expected.first == got { expected.removeFirst() } else { same = false }
        }
      }
      if !expected.isEmpty { same = false }
      #expect(same, "stream \(stream.prefix(40)) at \(offset)")
      if !same { return }
    }
  }

  @Test func equalsAsTheReaderReadsIntoTheLinesPage() {
    var random = Seeded(state: 6)
    for _ in 0..<400 {
      let stream = Self.randomStream(using: &random)
      compareAsTheReader(stream, chunks: (0..<4).map { _ in Int.random(in: 1...4096, using: &random) })
      compareAsTheReader(stream, chunks: [4096])
    }
    // Reads that end a few bytes short of the page, after a line that
    // grew: the unread bytes moved to the page's end, or to the spare page
    // when even there the line would overtake them.
    for _ in 0..<400 {
      var stream: [UInt8] = []
      for _ in 0..<Int.random(in: 1...60, using: &random) {
        stream += Self.pieces.randomElement(using: &random)!
      }
      let short = (0..<5).map { _ in Int.random(in: 0...16, using: &random) }
      compareAsTheReader(stream, chunks: [], shortOfThePage: short)
    }
    // Lines that grow fastest: every byte invalid (<FF>, 4 bytes), every
    // byte a C1 control's first half (<C2> then <85>...), all in one read.
    for byte: [UInt8] in [[0xFF, 0xFF], [0xC2], [0xF0, 0x9F, 0x98], [27], [0xC2, 0x9B]] {
      for length in [10, 100, 1000, 2000, 3990, 4100] {
        var line: [UInt8] = []
        while line.count < length { line += byte }
        compareAsTheReader(Array("a\n".utf8) + line + [10] + Array("after\n".utf8), chunks: [4096])
        compareAsTheReader(line + [13] + line + [10], chunks: [1500])
      }
    }
  }

  @Test func theRecordIsPutTogetherAroundTheLine() {
    var framer = InPlaceFramer(
      storage: .allocate(byteCount: LineCleaner.storageBytes, alignment: 8))
    for client in [0, 7, 17, 1_000_000, 999_999_999_999_999_999] {
      for (bytes, cut) in [
        (Array("hello everyone\n".utf8), false),
        ([UInt8](repeating: 0x41, count: RoomLimits.lineBytes + 50) + [10], true),
        (Array("é\u{1B}\n".utf8), false),
      ] {
        var records: [[UInt8]] = []
        var lines: [RoomLine] = []
        bytes.withUnsafeBytes { bytes in
          framer.feed(bytes) { input in
            if case .line(let line) = input {
              lines.append(line.roomLine)
              records.append(Array(line.record(client: client)))
            }
          }
        }
        #expect(lines.count == 1 && lines[0].cut == cut)
        #expect(records == [RoomRecord.say(client: client, lines[0]).bytes])
        #expect(records[0].count <= 4096)
      }
    }
  }

  /// The reader's flood cost of a line, counted without a String, is the
  /// one counted from the line as an array (`RoomCommand.parse`).
  @Test func theCostOfALineInPlace() {
    var texts = [
      "", "/", "//", "//who", "/who", "/WHO", "/Who is there", "/who ", "/whoami", "/help", "/HeLp me",
      "/helpx",
      "/h", "/me", "/nick", "/nick x", "/quit", "/unknown", "who", " /who", "/wh\u{F6}", "/\u{1E9E}",
      "/who\t",
      String(repeating: "x", count: 4000),
    ]
    for command in RoomCommand.all {
      texts += [command.name, command.name.uppercased(), command.name + " arg", "/" + command.name]
    }
    for text in texts {
      for cut in [false, true] {
        let line = RoomLine(text: Array(text.utf8), cut: cut)
        let expected = max(
          RoomLimits.floodLineCost,
          line.text.count + RoomLimits.prefixBytes + (cut ? RoomLimits.cutNotice.utf8.count : 0),
          RoomCommand.parse(line.text)?.command?.replyBytes ?? 0)
        #expect(line.text.withUnsafeBytes { RoomLimits.cost(of: $0, cut: cut) } == expected, "\(text)")
        #expect(RoomLimits.cost(of: line) == expected)
      }
    }
  }
}
