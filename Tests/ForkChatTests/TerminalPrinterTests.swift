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

  @Test func invalidUTF8PassesThrough() {
    var printer = TerminalPrinter(colour: false)
    #expect(printer.render([0xff, 0xfe, 10]) == Array("< ".utf8) + [0xff, 0xfe, 10])
  }
}
