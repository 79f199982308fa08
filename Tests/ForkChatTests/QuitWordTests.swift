import ForkChat
import Testing

@Suite("Quit word")
struct QuitWordTests {
  func detector(_ word: String = "exit") -> QuitWordDetector { QuitWordDetector(word: Array(word.utf8)) }

  @Test func lineEqualToTheWord() {
    var quit = detector()
    #expect(quit.scan(Array("exit\n".utf8)) == 5)
  }

  @Test func afterOtherLinesInTheSameRead() {
    var quit = detector()
    #expect(quit.scan(Array("hello\nexit\nafter\n".utf8)) == 11)
  }

  @Test func carriageReturnNewline() {
    var quit = detector()
    #expect(quit.scan(Array("exit\r\n".utf8)) == 6)
  }

  @Test(arguments: ["exits\n", "exi\n", " exit\n", "exit \n", "EXIT\n", "my exit\n", "exit", "\n"])
  func otherLinesAreData(text: String) {
    var quit = detector()
    #expect(quit.scan(Array(text.utf8)) == nil)
  }

  @Test func splitAcrossReads() {
    var quit = detector()
    #expect(quit.scan(Array("hel".utf8)) == nil)
    #expect(quit.scan(Array("lo\nex".utf8)) == nil)
    #expect(quit.scan(Array("it".utf8)) == nil)
    #expect(quit.scan(Array("\n".utf8)) == 1)
  }

  @Test func wordInTheMiddleOfASplitLineIsData() {
    var quit = detector()
    #expect(quit.scan(Array("say ".utf8)) == nil)
    #expect(quit.scan(Array("exit\n".utf8)) == nil)
    #expect(quit.scan(Array("exit\n".utf8)) == 5)
  }

  @Test func otherWord() {
    var quit = detector("fin")
    #expect(quit.scan(Array("exit\nfin\n".utf8)) == 9)
  }
}
