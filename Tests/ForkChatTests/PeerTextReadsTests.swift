import Testing

@testable import ForkChat

// The sanitizer's one-pass path (PeerText.feed(_:onLine:), which the
// terminal printer uses, reusing one line buffer from line to line and
// read to read) must show exactly what the per-line path shows, read for
// read (a read's last bytes without "\n" are a line of their own: where
// the reads cut matters, by design).
@Suite("Peer text, read by read")
struct PeerTextReadsTests {
  /// Every kind of byte the sanitizer treats apart, in many short lines.
  static let sample: [UInt8] = {
    var bytes: [UInt8] = []
    for round in 0..<40 {
      bytes += Array("line \(round) plain\ttext ".utf8)
      bytes += [0, 1, 27, 0x5b, 127, 0x9b, 0xff, 0xc0, 0xaf]  // C0, ESC [, DEL, invalid
      bytes += [0xc2, 0x9b, 0xe2, 0x80, 0xae, 0xe6, 0xbc, 0xa2, 0xf0, 0x9f, 0x98, 0x80]  // C1, bidi, 漢, 😀
      bytes += round % 3 == 0 ? [13, 10] : round % 3 == 1 ? [13, 0x61, 10] : [10, 10]
    }
    return bytes + [0xe6, 0xbc]  // a sequence the end cuts
  }()

  /// The lines the per-line `feed` gives, the bytes fed in reads of `size`.
  func lines(readsOf size: Int) -> [[UInt8]] {
    var text = PeerText()
    var lines: [[UInt8]] = []
    var start = 0
    while start < Self.sample.count {
      lines += text.feed(Array(Self.sample[start..<min(start + size, Self.sample.count)]))
      start += size
    }
    return lines + text.finish()
  }

  @Test(arguments: [1, 2, 3, 7, 64, 1 << 16])
  func onePassShowsWhatTheLinesShow(size: Int) {
    var text = PeerText()
    var shown: [[UInt8]] = []
    var start = 0
    while start < Self.sample.count {
      let read = Array(Self.sample[start..<min(start + size, Self.sample.count)])
      read.withUnsafeBytes { text.feed($0) { shown.append(Array($0)) } }
      start += size
    }
    shown += text.finish()
    let expected = lines(readsOf: size)
    #expect(shown.count == expected.count)
    #expect(shown == expected)
  }

  @Test func oneReadOfManyLines() {
    // 40 lines, 13 empty ones ("\n\n"), the cut sequence shown at the end
    #expect(lines(readsOf: 1 << 16).count == 40 + 13 + 1)
    #expect(lines(readsOf: 1 << 16).last == Array("<E6><BC>".utf8))
  }

  @Test func terminalPrinterMarksEachLineOnce() {
    var printer = TerminalPrinter(colour: false)
    let shown = printer.render(Array("a\0\nb\u{1b}\n".utf8))
    #expect(shown == Array("< a^@\n< b^[\n".utf8))
  }

  /// Printable ASCII is copied eight bytes at a time: every byte value, at
  /// every place in and around a word, among letters, is still seen and
  /// shown alone (each byte checked against its expected form, written out
  /// here rather than by the code under test).
  @Test func everyByteAtEveryPlaceOfAWord() {
    func shown(_ byte: UInt8) -> [UInt8] {
      if byte == 9 || (0x20...0x7e).contains(byte) { return [byte] }
      if byte < 0x20 || byte == 0x7f { return [UInt8(ascii: "^"), byte ^ 0x40] }
      let digits = Array("0123456789ABCDEF".utf8)
      return [UInt8(ascii: "<"), digits[Int(byte >> 4)], digits[Int(byte & 15)], UInt8(ascii: ">")]
    }
    let letters = [UInt8](repeating: UInt8(ascii: "a"), count: 31)
    for byte in UInt8.min...UInt8.max where byte != 10 && byte != 13 {
      for place in 0..<17 {
        var text = PeerText()
        let lines = text.feed(Array(letters[..<place]) + [byte] + Array(letters[place...]) + [10])
        #expect(
          lines == [Array(letters[..<place]) + shown(byte) + Array(letters[place...])],
          "byte \(byte) at \(place)")
      }
    }
  }
}
