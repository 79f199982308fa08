import Testing

@testable import ForkChat

@Suite("Line editor")
struct LineEditorTests {
  func typed(_ keys: [String]) -> (LineEditor, [LineEditor.Event]) {
    var editor = LineEditor()
    var events: [LineEditor.Event] = []
    for key in keys { events += editor.feed(Array(key.utf8)) }
    return (editor, events)
  }

  func sent(_ text: String) -> LineEditor.Event { .send(Array(text.utf8)) }

  @Test func enterSendsTheLine() {
    let (editor, events) = typed(["hello", "\r"])
    #expect(events == [sent("hello")])
    #expect(editor.text.isEmpty && editor.cursor == 0)
  }

  @Test func insertAnywhere() {
    let (_, events) = typed(["held", "\u{1b}[D", "\u{1b}[D", "l", "\u{1b}[F", "!", "\r"])
    #expect(events == [sent("helld!")])
  }

  @Test func backspaceRemovesACharacterNotAByte() {
    let (editor, events) = typed(["café", "\u{7f}", "e\r", "漢字", "\u{7f}", "\r", "a😀", "\u{8}", "\r"])
    #expect(events == [sent("cafe"), sent("漢"), sent("a")])
    #expect(editor.text.isEmpty)
  }

  @Test func combiningAccentJoinsItsLetter() {
    var editor = LineEditor()
    _ = editor.feed(Array("e".utf8))
    _ = editor.feed(Array("\u{301}".utf8))
    #expect(editor.text.count == 1)
    _ = editor.feed([0x7f])
    #expect(editor.text.isEmpty)
  }

  @Test func utf8SplitAcrossReads() {
    var editor = LineEditor()
    _ = editor.feed([0xc3])
    _ = editor.feed([0xa9, 0xe6, 0xbc])
    let events = editor.feed([0xa2, 13])
    #expect(events == [sent("é漢")])
  }

  @Test func escapeSequenceSplitAcrossReads() {
    let (_, events) = typed(["ab", "\u{1b}", "[", "D", "X\r"])
    #expect(events == [sent("aXb")])
  }

  @Test func deleteKeyAndHomeEnd() {
    let (_, events) = typed(["abcd", "\u{1}", "\u{1b}[3~", "\u{5}", "e", "\u{1b}[H", ">", "\r"])
    #expect(events == [sent(">bcde")])
  }

  @Test func ctrlUAndCtrlKAndCtrlW() {
    let (_, events) = typed([
      "one two three", "\u{17}", "\r", "one two", "\u{1b}[D\u{1b}[D", "\u{15}", "\r", "abc", "\u{1}\u{6}",
      "\u{b}", "\r",
    ])
    #expect(events == [sent("one two "), sent("wo"), sent("a")])
  }

  @Test func historyUpAndDown() {
    let (editor, events) = typed([
      "first\r", "second\r", "draft", "\u{1b}[A", "\u{1b}[A", "\u{1b}[B", "\u{1b}[B",
    ])
    #expect(events == [sent("first"), sent("second")])
    #expect(String(editor.text) == "draft")
    let (_, again) = typed(["first\r", "\u{1b}[A", "\u{1b}[A", "!\r"])
    #expect(again == [sent("first"), sent("first!")])
  }

  @Test func pasteOfSeveralLinesSendsEach() {
    let (_, events) = typed(["one\rtwo\r\nthree\nfour"])
    #expect(events == [sent("one"), sent("two"), sent("three")])
  }

  @Test func crThenLfInTheNextReadIsOneEnter() {
    let (_, events) = typed(["a\r", "\nb\r"])
    #expect(events == [sent("a"), sent("b")])
  }

  @Test func ctrlDOnAnEmptyLineEndsTheInput() {
    let (_, events) = typed(["ab", "\u{1}", "\u{4}", "\r", "\u{4}", "ignored\r"])
    #expect(events == [sent("b"), .endOfInput])
  }

  @Test func ctrlLAsksForARedraw() {
    let (_, events) = typed(["\u{c}"])
    #expect(events == [.redraw])
  }

  @Test func controlKeysAndUnknownSequencesInsertNothing() {
    let (_, events) = typed(["a\u{7}\u{1b}[15~\u{1b}[200~b\u{1b}OA\r"])
    #expect(events == [sent("ab")])
  }

  @Test func longLineScrollsSidewaysAroundTheCursor() {
    var editor = LineEditor()
    let line = String((0..<300).map { Character(Unicode.Scalar(UInt8(97 + $0 % 26))) })
    _ = editor.feed(Array(line.utf8))
    var view = editor.view(width: 40)
    #expect(displayWidth(view.text) <= 39)
    #expect(view.cursorColumn == displayWidth(view.text))
    #expect(line.hasSuffix(view.text))
    _ = editor.feed(Array("\u{1}".utf8))
    view = editor.view(width: 40)
    #expect(view.cursorColumn == 0)
    #expect(line.hasPrefix(view.text))
    let events = editor.feed([13])
    #expect(events == [sent(line)])
  }

  @Test func wideCharactersTakeTwoColumns() {
    var editor = LineEditor()
    _ = editor.feed(Array("漢字😀é".utf8))
    let view = editor.view(width: 40)
    #expect(view.text == "漢字😀é")
    #expect(view.cursorColumn == 7)
  }
}

@Suite("Display width")
struct WidthTests {
  @Test func widths() {
    #expect(displayWidth(Character("a")) == 1)
    #expect(displayWidth(Character("é")) == 1)
    #expect(displayWidth(Character("e\u{301}")) == 1)
    #expect(displayWidth(Character("漢")) == 2)
    #expect(displayWidth(Character("ｱ")) == 1)  // half-width katakana
    #expect(displayWidth(Character("Ａ")) == 2)  // full-width A
    #expect(displayWidth(Character("😀")) == 2)
    #expect(displayWidth(Character("❤\u{FE0F}")) == 2)
    #expect(displayWidth(Character("한")) == 2)
    #expect(displayWidth("漢字 ok") == 7)
  }
}

@Suite("Peer text")
struct PeerTextTests {
  func lines(_ chunks: [[UInt8]]) -> [String] {
    var text = PeerText()
    return chunks.flatMap { text.feed($0) }.map { String(decoding: $0, as: UTF8.self) }
  }

  @Test func escapeSequencesAreShown() {
    #expect(
      lines([Array("\u{1b}]0;title\u{7}\u{1b}]52;c;aGk=\u{7}\u{1b}[?1049h\n".utf8)]) == [
        "^[]0;title^G^[]52;c;aGk=^G^[[?1049h"
      ])
  }

  @Test func c1InBothFormsAndBidiAreShown() {
    #expect(
      lines([[0x9b, 0x32, 0x4a, 0xc2, 0x9b, 0xc2, 0x85, 0xe2, 0x80, 0xae, 0xe2, 0x81, 0xa6, 10]]) == [
        "<9B>2J<U+009B><U+0085><U+202E><U+2066>"
      ])
  }

  @Test func invalidBytesAreShownOneByOne() {
    #expect(lines([[0x61, 0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 10]]) == ["a<FF><C0><AF><ED><A0><80>"])
  }

  @Test func messageWithoutNewlineIsALine() {
    #expect(lines([Array("no newline".utf8), Array("next\n".utf8)]) == ["no newline", "next"])
  }

  @Test func loneReturnIsShown() {
    #expect(lines([Array("a\rb\n".utf8)]) == ["a^Mb"])
  }

  @Test func splitCRLFIsOneLineEnd() {
    #expect(lines([Array("a\r".utf8), Array("\nb\n".utf8), Array("\n".utf8)]) == ["a", "b", ""])
  }

  @Test func fourByteSequenceSplitThreeWays() {
    #expect(lines([[0xf0, 0x9f], [0x98], [0x80, 10]]) == ["😀"])
  }

  @Test func whatWaitsAtTheEndIsShown() {
    var text = PeerText()
    #expect(
      text.feed(Array("tail".utf8) + [0xe6, 0xbc]).map { String(decoding: $0, as: UTF8.self) } == ["tail"])
    #expect(text.finish().map { String(decoding: $0, as: UTF8.self) } == ["<E6><BC>"])
    #expect(text.finish().isEmpty)
  }
}

@Suite("Wire bytes")
struct WireBytesTests {
  @Test func aSentLineEndsWithNewline() {
    #expect(wireBytes(Array("hi".utf8), ending: .lf) == Array("hi\n".utf8))
    #expect(wireBytes(Array("hi".utf8), ending: .crlf) == Array("hi\r\n".utf8))
    #expect(wireBytes(Array("hi".utf8), ending: .none) == Array("hi".utf8))
  }
}
