import ForkChat
import Testing

// System/TextPrefix.swift: hasASCIIPrefix says what hasPrefix says, a
// combining mark after the prefix included.
@Suite("ASCII prefixes")
struct TextPrefixTests {
  @Test func sameAnswerAsHasPrefix() {
    let words = [
      "", "-", "--", "-x", "--bind", "x-", "-\u{301}", "-\u{301}x", "--\u{301}",
      "-é", "é", "[::1]", "[\u{301}",
    ]
    for word in words {
      #expect(word.hasASCIIPrefix("-") == word.hasPrefix("-"), "\(word.unicodeScalars.map(\.value))")
      #expect(word.hasASCIIPrefix("--") == word.hasPrefix("--"), "\(word.unicodeScalars.map(\.value))")
      #expect(word.hasASCIIPrefix("[") == word.hasPrefix("["), "\(word.unicodeScalars.map(\.value))")
    }
    #expect("::ffff:10.0.0.1".hasASCIIPrefix("::ffff:"))
    #expect(!"::1".hasASCIIPrefix("::ffff:"))
    #expect(!"-\u{301}".hasASCIIPrefix("-"))
  }
}
