import ForkChat
import Testing

@Suite("Terminal rendering")
struct TerminalPrinterTests {
  func render(_ chunks: [String], colour: Bool = false) -> String {
    var printer = TerminalPrinter(colour: colour)
    return chunks.map { String(decoding: printer.render(Array($0.utf8)), as: UTF8.self) }.joined()
  }

  @Test func linesAreMarked() {
    #expect(render(["hello\nworld\n"]) == "< hello\n< world\n")
  }

  @Test func messageWithoutNewlineEndsOnItsOwnLine() {
    #expect(render(["hello", "world"]) == "< hello\n< world\n")
  }

  @Test func crlfIsANewline() {
    #expect(render(["telnet\r\nline\r\n"]) == "< telnet\n< line\n")
  }

  @Test func controlCharactersAreShownNotObeyed() {
    #expect(render(["\u{1b}[2Jboom\u{07}\u{7f}\r!\n"]) == "< ^[[2Jboom^G^?^M!\n")
    #expect(render(["a\u{0}b\tc\n"]) == "< a^@b\tc\n")
  }

  @Test func emptyLinesAreKept() {
    #expect(render(["\n\n"]) == "< \n< \n")
  }

  @Test func colourWrapsEachLine() {
    #expect(render(["hi\n"], colour: true) == "\u{1b}[36m< hi\u{1b}[0m\n")
  }

  @Test func invalidUTF8IsShownAsBytes() {
    var printer = TerminalPrinter(colour: false)
    #expect(printer.render([0xff, 0xfe, 10]) == Array("< <FF><FE>\n".utf8))
  }

  @Test func c1ControlsAreShownNotObeyed() {
    var printer = TerminalPrinter(colour: false)
    // 8-bit CSI (a lone 0x9B), then CSI encoded in UTF-8 (C2 9B), then an OSC.
    #expect(
      printer.render([0x9b] + Array("31m".utf8) + [0xc2, 0x9b, 0xc2, 0x9d, 10])
        == Array("< <9B>31m<U+009B><U+009D>\n".utf8))
  }

  @Test func bidiOverridesAreShown() {
    #expect(render(["abc\u{202E}def\u{2066}\n"]) == "< abc<U+202E>def<U+2066>\n")
  }

  @Test func utf8IsKept() {
    #expect(render(["café 漢字 😀\n"]) == "< café 漢字 😀\n")
  }

  @Test func crlfSplitAcrossReadsIsOneLineEnd() {
    #expect(render(["hello\r", "\nworld\r\n"]) == "< hello\n< world\n")
  }

  @Test func utf8SplitAcrossReadsIsOneCharacter() {
    var printer = TerminalPrinter(colour: false)
    let first = printer.render(Array("ab".utf8) + [0xc3])
    let second = printer.render([0xa9] + Array("\n".utf8))
    #expect(String(decoding: first + second, as: UTF8.self) == "< ab\n< é\n")
  }
}
