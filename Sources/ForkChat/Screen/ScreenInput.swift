import Glibc

// The sending side's part of the chat screen: the keyboard and the input
// line, on the bottom row. Run by the fork session's child, the threads
// session's sender thread, or the poll loop.

/// The bytes a sent line becomes on the wire: the line, ended as
/// --line-end says (LineEnd.translate, the one place where a typed line's
/// end is chosen, for the chat screen as for the line-by-line chat).
func wireBytes(_ line: [UInt8], ending: LineEnd) -> [UInt8] {
  var wire: [UInt8] = []
  ending.translate(line + [10], into: &wire)
  return wire
}

/// What the sending side tells the receiving side, through a pipe in the
/// fork and threads sessions: each record is a kind byte, text, "\n".
enum InputRecord {
  static let sent: UInt8 = 1
  static let notice: UInt8 = 2

  static func encode(_ kind: UInt8, _ text: [UInt8]) -> [UInt8] { [kind] + text + [10] }
}

struct ScreenInput {
  let quitWord: [UInt8]?
  var lineEnd = LineEnd.lf
  let colour: Bool
  /// Who draws the input line, for --trace: the sending side.
  let role: Role
  var editor = LineEditor()
  var size = WindowSize.current()

  static let prompt = "> "

  var promptBytes: [UInt8] {
    colour ? Array("\u{1b}[1m\(Self.prompt)\u{1b}[0m".utf8) : Array(Self.prompt.utf8)
  }

  /// What one read's keys came to.
  struct Typed {
    /// Lines sent (for the conversation), and their bytes for the socket.
    var lines: [[UInt8]] = []
    var wire: [UInt8] = []
    /// Ctrl-D on an empty line, or the quit word: the input is over.
    var ended = false
    var quit = false
    /// Ctrl-L: the receiving side should draw everything again too.
    var redrawAll = false
  }

  /// Runs the editor over the keys of one read.
  mutating func take(_ keys: UnsafeRawBufferPointer) -> Typed {
    var typed = Typed()
    for event in editor.feed(keys) where !typed.ended {
      switch event {
      case .send(let line):
        typed.lines.append(line)
        typed.wire += wireBytes(line, ending: lineEnd)
        if let quitWord, line == quitWord {
          typed.ended = true
          typed.quit = true
        }
      case .endOfInput: typed.ended = true
      case .redraw: typed.redrawAll = true
      }
    }
    return typed
  }

  /// Draws the input row: the prompt, the part of the line around the
  /// cursor, the cursor in place. One write(2).
  mutating func draw() throws(Errno) {
    let view = editor.view(width: size.columns - displayWidth(Self.prompt))
    var update = Update()
    update.move(row: size.rows)
    update.clearRow()
    update.raw(promptBytes)
    update.text(view.text)
    update.move(row: size.rows, column: 1 + displayWidth(Self.prompt) + view.cursorColumn)
    update.saveCursor()  // where the receiving side's updates bring the cursor back (DECRC)
    try update.write(by: role, "input")
  }

  /// The input is over: the row is left blank.
  func clear() throws(Errno) {
    var update = Update()
    update.move(row: size.rows)
    update.clearRow()
    update.saveCursor()
    try update.write(by: role, "input")
  }
}
