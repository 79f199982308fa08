// The receiving side's part of the chat screen: the conversation, which
// scrolls in the upper rows, and the status row under it. Drawn by one
// process (the fork session's parent, the threads session's main thread,
// the poll loop), which is why it can keep the conversation's last lines
// and draw them again after a resize or Ctrl-Z.
//
//   row 1        ┐
//   …            │ conversation
//   row rows-2   ┘
//   row rows-1     status
//   row rows       input line (the sending side's: ScreenInput)
//
// No scroll region (DECSTBM): the whole screen scrolls, and a new row is
// made by bytes that name no row number (`add`), so bytes written for
// one size and read by the terminal after a resize still land right.
//
// Every update leaves the cursor where the sending side put it: each
// update of the sending side ends with DECSC (save the cursor), each of
// this side ends with DECRC (restore it), so the sending side's cursor is
// never seen elsewhere, even when one update was cut by a SIGSTOP and
// the other side drew in between (its later DECSC is the one restored).

/// What the status row says.
enum ChatState: Equatable {
  case connected
  case peerClosed
  case inputEnded(linger: String?)
}

final class Conversation {
  enum Speaker { case peer, you, notice }

  struct Entry {
    let speaker: Speaker
    let text: [UInt8]
  }

  let peer: SocketAddress
  let colour: Bool
  /// Who draws, for --trace: the main process draws the layout before the
  /// session starts, then the receiving side (`Screen.start`).
  var role = Role.main
  private(set) var size = WindowSize.current()
  private var entries: [Entry] = []
  private var peerText = PeerText()
  private var state = ChatState.connected
  /// Whether the sending side still draws the input row.
  private var inputRowOwned = true

  /// Entries kept for redraws: more than any terminal has rows.
  static let kept = 500

  /// How rows name their speaker: "127.0.0.1: ", "you: " (computed once).
  private let peerLabel: (bytes: [UInt8], width: Int)
  private let youLabel: (bytes: [UInt8], width: Int)

  init(peer: SocketAddress, colour: Bool) {
    self.peer = peer
    self.colour = colour
    func label(_ name: String, _ colourCode: String) -> ([UInt8], Int) {
      let text = colour ? "\u{1b}[\(colourCode)m\(name)\u{1b}[0m: " : "\(name): "
      return (Array(text.utf8), displayWidth(name) + 2)
    }
    peerLabel = label(peer.host, "36")
    youLabel = label("you", "32")
  }

  var conversationRows: ClosedRange<Int> { 1...(size.rows - 2) }
  var statusRow: Int { size.rows - 1 }
  var inputRow: Int { size.rows }

  /// The first drawing: two rows are made free at the bottom (the text
  /// already on the screen scrolls up, if it must), any scroll region a
  /// program left is reset (the whole screen scrolls), the status row and
  /// an empty input line.
  func start(prompt: [UInt8]) throws(Errno) {
    var update = Update()
    update.text("\r\n\r\n")
    update.scrollRegion(nil)
    drawStatus(&update)
    update.move(row: inputRow)
    update.clearRow()
    update.raw(prompt)
    update.saveCursor()  // where this side's DECRC brings the cursor back until the input line is drawn
    try update.write(by: role, "layout")
  }

  /// The peer's bytes, as lines of the conversation.
  func showPeer(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
    try add(peerText.feed(bytes).map { Entry(speaker: .peer, text: $0) })
  }

  /// The peer has closed: what its last bytes left waiting
  /// (`PeerText.finish`).
  func finishPeer() throws(Errno) {
    try add(peerText.finish().map { Entry(speaker: .peer, text: $0) })
  }

  /// Lines the sending side has sent.
  func showSent(_ lines: [[UInt8]]) throws(Errno) {
    try add(
      lines.map { line in
        var text = PeerText()  // our own line is made harmless too (a pasted escape, a bidi override)
        return Entry(speaker: .you, text: text.feed(line + [10]).first ?? [])
      })
  }

  func showNotice(_ text: String) throws(Errno) {
    try add([Entry(speaker: .notice, text: Array(text.utf8))])
  }

  func setState(_ state: ChatState) throws(Errno) {
    self.state = state
    var update = Update()
    drawStatus(&update)
    if case .inputEnded = state {
      // The sending side is gone: its row is ours to clear.
      inputRowOwned = false
      update.move(row: inputRow)
      update.clearRow()
      update.restoreCursor()
      update.move(row: inputRow)
    } else {
      update.restoreCursor()
    }
    try update.write(by: role, "status")
  }

  /// Adds entries and draws their rows at the bottom of the conversation,
  /// scrolling it up: one write(2). Every row is written, even when more
  /// come at once than the conversation shows: a row scrolled out at the
  /// top goes into the terminal's scrollback, where a person scrolls back
  /// to read a burst.
  private func add(_ new: [Entry]) throws(Errno) {
    guard !new.isEmpty else { return }
    entries += new
    if entries.count > 2 * Self.kept { entries.removeFirst(entries.count - Self.kept) }
    let rows = new.flatMap { self.rows(of: $0) }
    var update = Update()
    // Size-independent, and relative to the conversation's last row, not
    // to the bottom: to the bottom row (CUD 999 stops there), up two rows
    // (CUU 2: the conversation's last row, above the status row).
    update.raw(Self.toBottom + Self.upTwo)
    update.checkpoint(resume: Self.toBottom + Self.upTwo)
    for row in rows {
      // IND three times: the cursor goes three rows down from the last
      // row, the whole screen scrolling up (its top row into the
      // scrollback) for each IND on the bottom row: once when the status
      // and input rows are under the last row. Up two rows (the row
      // under the last one), IL (a blank row there: what is under it
      // moves down, the bottom row goes), the new row. IND, not "\n":
      // the terminal driver's output processing (ONLCR) would hand the
      // update to the terminal in pieces, split at each "\n".
      //
      // Why from the last row: a terminal that reads the update in
      // pieces may take a resize between two of them, with the cursor
      // on the last row. tmux, made shorter, deletes the rows under the
      // cursor (here the status and input rows; the redraw that follows
      // SIGWINCH draws them again) before it pushes rows into the
      // scrollback. Counted from the bottom, the next rows would then go
      // in above the last two conversation rows, which the redraw's
      // status and input rows would cover: two lines lost. Counted from
      // the last row, whatever is under it, each row goes right under
      // it, and no conversation row is ever under the cursor.
      //
      // Checkpoints after the INDs and after IL: a write cut by SIGSTOP
      // goes on from the last one reached, each scroll and insertion done
      // once (`writeUpdate`).
      update.raw(Self.index + Self.index + Self.index)
      update.checkpoint(resume: Self.toBottom)
      update.raw(Self.upTwo)
      update.raw(Self.insertLine)
      update.checkpoint(resume: Self.toBottom + Self.upTwo)
      update.raw([13])
      update.raw(row)
    }
    // Two rows down (the bottom row, or two new rows if tmux deleted the
    // status and input rows under the last one: the next update finds
    // the last row two rows above the bottom again), then the sending
    // side's cursor, on the bottom row.
    update.raw(Self.index + Self.index)
    update.restoreCursor()
    update.raw(Self.toBottom)
    try update.write(by: role, "conversation")
  }

  /// CUD 999: the cursor down to the bottom row, whatever the size.
  static let toBottom: [UInt8] = Array("\u{1b}[999B".utf8)
  /// IND: the cursor down one row; on the bottom row, the screen scrolls.
  static let index: [UInt8] = Array("\u{1b}D".utf8)
  /// CUU 2: the cursor up two rows.
  static let upTwo: [UInt8] = Array("\u{1b}[2A".utf8)
  /// IL: a blank row at the cursor's, the rows under it down one.
  static let insertLine: [UInt8] = Array("\u{1b}[L".utf8)

  /// Draws everything but the input row again, for the current size:
  /// after SIGWINCH, after Ctrl-Z and fg, on Ctrl-L.
  func redraw() throws(Errno) {
    size = WindowSize.current()
    var update = Update()
    update.scrollRegion(nil)
    var rows: [[UInt8]] = []
    for entry in entries.suffix(Self.kept).reversed() {
      rows.insert(contentsOf: self.rows(of: entry), at: 0)
      if rows.count >= conversationRows.count { break }
    }
    rows = Array(rows.suffix(conversationRows.count))
    let first = conversationRows.upperBound - rows.count + 1
    for row in conversationRows {
      update.move(row: row)
      update.clearRow()
      if row >= first { update.raw(rows[row - first]) }
    }
    drawStatus(&update)
    if !inputRowOwned {
      update.move(row: inputRow)
      update.clearRow()
    }
    update.restoreCursor()
    if !inputRowOwned { update.move(row: inputRow) }
    try update.write(by: role, "redraw")
  }

  /// Gives the terminal back as it was (Ctrl-Z, and the end): the whole
  /// screen scrolls again, the status and input rows are blank, and the
  /// cursor waits on the row under the conversation, where the shell's
  /// prompt will come.
  func leave() throws(Errno) {
    var update = Update()
    update.scrollRegion(nil)
    update.style("0")
    update.move(row: statusRow)
    update.control("[J")  // ED: blank from here to the end of the screen
    try update.write(by: role, "leave")
  }

  private func drawStatus(_ update: inout Update) {
    let text: String
    switch state {
    case .connected: text = "\(peer) · connected · Enter sends · Ctrl-D ends"
    case .peerClosed: text = "\(peer) · closed the connection"
    case .inputEnded(let linger):
      text = "\(peer) · your side is closed" + (linger.map { "; waiting up to \($0) s for the peer" } ?? "")
    }
    update.move(row: statusRow)
    update.style("7")  // reverse video
    var row = " "
    var columns = 1
    for character in text {
      let width = displayWidth(character)
      if columns + width > size.columns { break }
      row.append(character)
      columns += width
    }
    // Only as wide as its text: the rest of the row is erased (EL), not
    // filled with blanks. A terminal that re-wraps rows on a narrower
    // window (tmux, VTE) would otherwise cut a full-width status row in
    // two, and the extra row would push a conversation row into the
    // scrollback that the redraw then draws again.
    update.text(row)
    update.style("0")
    update.control("[K")
  }

  /// An entry cut into screen rows: "NAME: text", where NAME is the peer's
  /// address or "you" (in colour unless NO_COLOR); a notice as it would
  /// stand on stderr. A line wider than the screen goes on, indented, on
  /// the next rows; a tab goes to the next multiple of 8.
  func rows(of entry: Entry) -> [[UInt8]] {
    let (prefix, used) =
      switch entry.speaker {
      case .peer: peerLabel
      case .you: youLabel
      case .notice: (Array("forkchat: ".utf8), 10)
      }
    var rows: [[UInt8]] = []
    var row = prefix
    row.reserveCapacity(prefix.count + min(entry.text.count, size.columns * 4))
    var column = used
    var textColumn = 0
    func place(_ bytes: some Collection<UInt8>, width: Int) {
      if column + width > size.columns && column > 2 {
        rows.append(row)
        row = Array("  ".utf8)
        column = 2
      }
      row += bytes
      column += width
      textColumn += width
    }
    var index = entry.text.startIndex
    while index < entry.text.endIndex {
      let byte = entry.text[index]
      if byte == 9 {  // tab: to the next multiple of 8
        let width = 8 - textColumn % 8
        place(repeatElement(32, count: width), width: width)
        index += 1
      } else if byte < 0x80 {  // ASCII (PeerText left no control character): a column each
        var end = index + 1
        while end < entry.text.endIndex && entry.text[end] < 0x80 && entry.text[end] != 9 { end += 1 }
        end = min(end, index + max(1, size.columns - column))  // what fits on this row
        place(entry.text[index..<end], width: end - index)
        index = end
      } else {  // a run of other characters, measured by character
        var end = index
        while end < entry.text.endIndex && entry.text[end] >= 0x80 { end += 1 }
        for character in String(decoding: entry.text[index..<end], as: UTF8.self) {
          place(Array(String(character).utf8), width: displayWidth(character))
        }
        index = end
      }
    }
    rows.append(row)
    return rows
  }
}
