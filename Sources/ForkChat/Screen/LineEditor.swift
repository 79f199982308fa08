// The input line: what the person types, edited in place, by character
// (é, emoji and CJK characters are one character each, whatever their
// bytes), before it is sent.
//
// Pure: keys in, events out, no system call. `ScreenInput` reads the keys
// and draws the line; the unit tests drive it byte by byte.

/// The line being typed, its cursor, and the lines sent this session
/// (Up and Down bring them back).
///
/// Keys (as a terminal in raw mode sends them; bash and readline users
/// know them): printable characters insert at the cursor; Backspace,
/// Delete, Left, Right, Home, End (and Ctrl-B, Ctrl-F, Ctrl-A, Ctrl-E),
/// Ctrl-Left/Ctrl-Right and Alt-B/Alt-F by word; Ctrl-U deletes before the
/// cursor, Ctrl-K after it, Ctrl-W the word before it; Up/Down (Ctrl-P,
/// Ctrl-N) walk the history; Ctrl-L redraws; Enter sends; Ctrl-D deletes
/// the character under the cursor, or, on an empty line, ends the input.
/// Ctrl-C and Ctrl-Z never arrive here: the terminal keeps ISIG and turns
/// them into signals.
public struct LineEditor: Sendable {
  public private(set) var text: [Character] = []
  public private(set) var cursor = 0
  private var history: [[Character]] = []
  /// Which history line is shown; `history.count` means the draft.
  private var historyIndex = 0
  private var draft: [Character] = []
  /// The first character shown on the row (the line scrolls sideways).
  private var viewStart = 0
  /// The start of a key that the end of the last read cut (an escape
  /// sequence, a UTF-8 sequence).
  private var cutKey: [UInt8] = []
  /// The last key was a "\r" Enter: a "\n" right after it is the same Enter
  /// (a paste may end its lines with "\r\n").
  private var afterReturn = false
  private var ended = false

  public enum Event: Equatable, Sendable {
    /// Enter: the line to send (UTF-8, without line end).
    case send([UInt8])
    /// Ctrl-D on an empty line: no more input.
    case endOfInput
    /// Ctrl-L: the person asks for the whole screen to be drawn again.
    case redraw
  }

  public init() {}

  /// Applies the keys in `bytes` (what one read(2) returned); returns what
  /// they ask for beyond editing, in order. After `.endOfInput`, further
  /// keys are ignored.
  public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Event] {
    let data = cutKey.isEmpty ? Array(bytes) : cutKey + Array(bytes)
    cutKey.removeAll()
    var events: [Event] = []
    var index = 0
    while index < data.count && !ended {
      let byte = data[index]
      let wasAfterReturn = afterReturn
      afterReturn = false
      switch byte {
      case 0x1B:
        guard let length = escapeLength(data, at: index) else {
          cutKey = Array(data[index...])
          return events
        }
        escape(data[index..<index + length])
        index += length
        continue
      case 13:
        events.append(enter())
        afterReturn = true
      case 10:
        if !wasAfterReturn { events.append(enter()) }
      case 0x7F, 0x08: deleteBackward()
      case 0x01: cursor = 0
      case 0x05: cursor = text.count
      case 0x02: cursor = max(0, cursor - 1)
      case 0x06: cursor = min(text.count, cursor + 1)
      case 0x15:
        text.removeSubrange(0..<cursor)
        cursor = 0
      case 0x0B: text.removeSubrange(cursor...)
      case 0x17: deleteWordBackward()
      case 0x0C: events.append(.redraw)
      case 0x10: historyUp()
      case 0x0E: historyDown()
      case 0x04:
        if text.isEmpty {
          ended = true
          events.append(.endOfInput)
        } else if cursor < text.count {
          text.remove(at: cursor)
        }
      case 0x09: insert(Character("\t"))
      case 0..<0x20: break  // other control keys do nothing
      case 0x20..<0x80: insert(Character(Unicode.Scalar(byte)))
      default:
        let length = UTF8Sequence.validLength(data, at: index)
        if length > 0 {
          insert(Unicode.Scalar(UTF8Sequence.decode(data[index..<index + length]))!)
          index += length
          continue
        }
        if UTF8Sequence.isCutShort(data, at: index) {
          cutKey = Array(data[index...])
          return events
        }
      // not UTF-8: dropped
      }
      index += 1
    }
    return events
  }

  public mutating func feed(_ bytes: [UInt8]) -> [Event] {
    bytes.withUnsafeBytes { feed($0) }
  }

  /// The part of the line that fits in `width` columns, and the column of
  /// the cursor in it: the line scrolls sideways so that the cursor is
  /// always on the row. Tab is shown as one space.
  public mutating func view(width: Int) -> (text: String, cursorColumn: Int) {
    let width = max(width, 2)
    viewStart = min(viewStart, cursor)
    // The cursor's cell must fit: scroll right until it does.
    var columns = 0
    var start = cursor
    while start > viewStart, columns + columnsOf(text[start - 1]) <= width - 1 {
      columns += columnsOf(text[start - 1])
      start -= 1
    }
    if start > viewStart { viewStart = start }
    // Show as much as fits before the cursor when the line's end leaves room.
    var used = 0
    var end = viewStart
    while end < text.count, used + columnsOf(text[end]) <= width - 1 {
      used += columnsOf(text[end])
      end += 1
    }
    if end == text.count {
      while viewStart > 0, used + columnsOf(text[viewStart - 1]) <= width - 1 {
        viewStart -= 1
        used += columnsOf(text[viewStart])
      }
    }
    var shown = ""
    var cursorColumn = 0
    used = 0
    for index in viewStart..<text.count {
      let columns = columnsOf(text[index])
      if used + columns > width - 1 { break }
      if index < cursor { cursorColumn += columns }
      shown.append(text[index] == "\t" ? " " : text[index])
      used += columns
    }
    return (shown, cursorColumn)
  }

  private func columnsOf(_ character: Character) -> Int {
    character == "\t" ? 1 : displayWidth(character)
  }

  private mutating func insert(_ character: Character) {
    text.insert(character, at: cursor)
    cursor += 1
  }

  /// A scalar that joins the character before it (a combining accent, a
  /// zero-width joiner and what follows, the second half of a flag) goes
  /// into that character; any other is a new character.
  private mutating func insert(_ scalar: Unicode.Scalar) {
    if cursor > 0 && scalar.value >= 0x300 {
      var joined = String(text[cursor - 1])
      joined.unicodeScalars.append(scalar)
      if joined.count == 1 {
        text[cursor - 1] = Character(joined)
        return
      }
    }
    insert(Character(scalar))
  }

  private mutating func enter() -> Event {
    let line = text
    if !line.isEmpty && history.last != line { history.append(line) }
    historyIndex = history.count
    draft = []
    text = []
    cursor = 0
    viewStart = 0
    return .send(Array(String(line).utf8))
  }

  private mutating func deleteBackward() {
    guard cursor > 0 else { return }
    cursor -= 1
    text.remove(at: cursor)
  }

  private mutating func deleteWordBackward() {
    let start = wordStart(before: cursor)
    text.removeSubrange(start..<cursor)
    cursor = start
  }

  private func wordStart(before position: Int) -> Int {
    var start = position
    while start > 0 && text[start - 1].isWhitespace { start -= 1 }
    while start > 0 && !text[start - 1].isWhitespace { start -= 1 }
    return start
  }

  private func wordEnd(after position: Int) -> Int {
    var end = position
    while end < text.count && text[end].isWhitespace { end += 1 }
    while end < text.count && !text[end].isWhitespace { end += 1 }
    return end
  }

  private mutating func historyUp() {
    guard historyIndex > 0 else { return }
    if historyIndex == history.count { draft = text }
    historyIndex -= 1
    text = history[historyIndex]
    cursor = text.count
  }

  private mutating func historyDown() {
    guard historyIndex < history.count else { return }
    historyIndex += 1
    text = historyIndex == history.count ? draft : history[historyIndex]
    cursor = text.count
  }

  /// The length of the escape sequence at `index`, nil if the read cut it.
  /// CSI: ESC [ parameters (0x30-0x3F) intermediates (0x20-0x2F) final
  /// (0x40-0x7E) (ECMA-48); SS3: ESC O and one byte; else ESC and one byte
  /// (Alt and a key).
  private func escapeLength(_ data: [UInt8], at index: Int) -> Int? {
    guard index + 1 < data.count else { return nil }
    switch data[index + 1] {
    case UInt8(ascii: "["):
      var end = index + 2
      while end < data.count, (0x20...0x3F).contains(data[end]) {
        end += 1
        if end - index > 32 { return end - index }  // too long to be a key: dropped
      }
      return end < data.count ? end - index + 1 : nil
    case UInt8(ascii: "O"): return index + 2 < data.count ? 3 : nil
    default: return 2
    }
  }

  private mutating func escape(_ sequence: ArraySlice<UInt8>) {
    let bytes = Array(sequence)
    let final = bytes.last!
    let parameters = String(decoding: bytes.dropFirst(2).dropLast(), as: UTF8.self)
    if bytes.count == 2 {  // Alt and a key
      switch final {
      case UInt8(ascii: "b"): cursor = wordStart(before: cursor)
      case UInt8(ascii: "f"): cursor = wordEnd(after: cursor)
      case 0x7F, 0x08: deleteWordBackward()
      default: break
      }
      return
    }
    let byWord = parameters.hasSuffix(";5") || parameters.hasSuffix(";3")  // Ctrl or Alt held
    switch (final, parameters) {
    case (UInt8(ascii: "A"), _): historyUp()
    case (UInt8(ascii: "B"), _): historyDown()
    case (UInt8(ascii: "C"), _): cursor = byWord ? wordEnd(after: cursor) : min(text.count, cursor + 1)
    case (UInt8(ascii: "D"), _): cursor = byWord ? wordStart(before: cursor) : max(0, cursor - 1)
    case (UInt8(ascii: "H"), _), (UInt8(ascii: "~"), "1"), (UInt8(ascii: "~"), "7"): cursor = 0
    case (UInt8(ascii: "F"), _), (UInt8(ascii: "~"), "4"), (UInt8(ascii: "~"), "8"): cursor = text.count
    case (UInt8(ascii: "~"), "3"): if cursor < text.count { text.remove(at: cursor) }
    default: break
    }
  }
}
