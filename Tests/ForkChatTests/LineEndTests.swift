import ForkChat
import Testing

@Suite("Line end of typed lines")
struct LineEndTests {
  func wire(_ end: LineEnd, _ typed: String) -> String {
    var wire: [UInt8] = []
    end.translate(Array(typed.utf8), into: &wire)
    return String(decoding: wire, as: UTF8.self)
  }

  @Test func lfKeepsTheLine() {
    #expect(wire(.lf, "hello\n") == "hello\n")
  }

  @Test func crlfAsNcMinusC() {
    #expect(wire(.crlf, "hello\n") == "hello\r\n")
    #expect(wire(.crlf, "a\nb\n") == "a\r\nb\r\n")
  }

  @Test func noneAsTheCourseScripts() {
    #expect(wire(.none, "exit\n") == "exit")
    #expect(wire(.none, "\n") == "")
  }

  @Test(arguments: LineEnd.allCases)
  func onlyTheNewlineChanges(end: LineEnd) {
    // A line cut by Ctrl-D has no "\n": it goes as typed; so do "\r" and tabs.
    #expect(wire(end, "half a li") == "half a li")
    #expect(wire(end, "a\tb\rc") == "a\tb\rc")
  }

  @Test func appendsToWhatIsThere() {
    var wire = Array("x".utf8)
    LineEnd.crlf.translate(Array("y\n".utf8), into: &wire)
    #expect(wire == Array("xy\r\n".utf8))
  }
}
