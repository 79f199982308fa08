import Glibc

// The chat screen: one terminal, two processes.
//
//   ┌──────────────────────────────────────────┐
//   │ 127.0.0.1: hi B, this is A               │  conversation: drawn by the
//   │ you: hello from B                        │  receiving side (parent)
//   │ 127.0.0.1 · connected · Enter sends · …  │  status: receiving side
//   │ > half typed li_                         │  input line: sending side (child)
//   └──────────────────────────────────────────┘
//
// The fork protocol stays: the child owns the keyboard and the input line,
// the parent owns the conversation. A line the child sends goes to the
// socket and, through a pipe, to the parent, which draws it as "you: …"
// (so the parent alone writes the conversation, and can draw all of it
// again after a resize). Every update of either part is one write(2)
// (`writeUpdate`), so the two processes' updates never mix on the screen.
// The terminal's modes are set here, before fork(), and restored by the
// parent once the child is gone (`Session.endTerminal`).
//
// Signals: SIGWINCH reaches both processes (the whole foreground process
// group): each draws its own part again at the new size. Ctrl-Z: the child
// stops at once (SIGTSTP's default action); the parent gives the terminal
// back (scrolling, modes), then stops itself with SIGSTOP; after `fg`
// (SIGCONT to both) the parent sets raw mode and draws the conversation
// again, the child its line. Ctrl-L: the child draws its line and sends
// SIGWINCH to the parent.

final class Screen {
  let mode: TerminalMode
  let conversation: Conversation
  /// The sending side's state (used only by the process or thread that
  /// sends: the child, the sender thread, the poll loop).
  var input: ScreenInput
  /// Records from the sending side (`InputRecord`): lines it sent, its
  /// notices. Non-blocking at the reading end.
  let fromInput: (read: FileDescriptor, write: FileDescriptor)
  private var fromInputOpen = true
  private var partialRecord: [UInt8] = []
  private var ended = false

  /// The signals the receiving side handles for the screen.
  static let signals: [CInt] = [SIGWINCH, SIGTSTP]

  private init(
    mode: TerminalMode, conversation: Conversation, input: ScreenInput, pipe: (FileDescriptor, FileDescriptor)
  ) {
    self.mode = mode
    self.conversation = conversation
    self.input = input
    self.fromInput = pipe
  }

  /// Starts the chat screen if this session suits it: the fork, threads or
  /// poll mode (alternate stays line by line: its turns already keep the
  /// lines apart), standard input and output terminals, TERM not dumb, no
  /// --plain, and no --trace lines due on the same terminal. Sets raw
  /// mode and draws the layout; nil: the line-by-line chat.
  static func start(for session: Session) -> Screen? {
    guard session.options.mode != .alternate, !session.options.plain,
      session.inputIsTerminal, session.outputIsTerminal, let mode = session.terminal
    else { return nil }
    let term = getenv("TERM").map { String(cString: $0) } ?? ""
    guard !term.isEmpty, term != "dumb", !(Trace.isOn && FileDescriptor.standardError.isTerminal) else {
      return nil
    }
    guard let pipe = try? makePipe() else { return nil }
    try? pipe.read.setNonBlocking()
    let colour = getenv("NO_COLOR") == nil
    let roles = drawingRoles(session.options.mode)
    let screen = Screen(
      mode: mode, conversation: Conversation(peer: session.peer, colour: colour),
      input: ScreenInput(
        quitWord: session.options.quitWord, lineEnd: session.options.lineEnd, colour: colour,
        role: roles.sending),
      pipe: pipe)
    mode.enterRaw()
    do {
      try screen.conversation.start(prompt: screen.input.promptBytes)
      screen.conversation.role = roles.receiving
    } catch {
      mode.restore()
      pipe.read.closeIgnoringErrors()
      pipe.write.closeIgnoringErrors()
      return nil
    }
    if FileDescriptor.standardError.isTerminal {
      noticeSink = { [conversation = screen.conversation] text in try? conversation.showNotice(text) }
    }
    return screen
  }

  /// Who draws each part in each mode, as --trace names them: the
  /// receiving side the conversation and the status row, the sending side
  /// the input line.
  static func drawingRoles(_ mode: Mode) -> (receiving: Role, sending: Role) {
    switch mode {
    case .fork: (.parent, .child)
    case .threads: (.main, .sender)
    case .poll: (.poll, .poll)
    case .alternate: (.alternate, .alternate)  // never: alternate stays line by line
    }
  }

  // MARK: The receiving side

  /// The reading end of the pipe from the sending side, for poll(2); nil
  /// once it has ended (its end of file would wake poll(2) for ever).
  var fromInputToWatch: FileDescriptor? { fromInputOpen ? fromInput.read : nil }

  /// The peer's bytes, into the conversation.
  func showPeer(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
    do {
      try conversation.showPeer(bytes)
    } catch {
      throw Failure("write to standard output", error)
    }
  }

  /// The peer has closed: what its last bytes left waiting.
  func finishPeer() throws(Failure) {
    try orFailure("write to standard output") { () throws(Errno) in try conversation.finishPeer() }
  }

  /// Draws what the sending side has sent through the pipe: its lines
  /// ("you: …") and its notices. Reads until the pipe is empty.
  func receiveFromInput() {
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while fromInputOpen {
      let count = buffer.withUnsafeMutableBytes { (try? fromInput.read.read(into: $0)) ?? -1 }
      if count < 0 { return }  // empty for now (EAGAIN)
      if count == 0 {
        fromInputOpen = false
        return
      }
      partialRecord += buffer[..<count]
      guard let end = partialRecord.lastIndex(of: 10) else { continue }
      var lines: [[UInt8]] = []
      for record in partialRecord[...end].split(separator: 10, omittingEmptySubsequences: false).dropLast() {
        guard let kind = record.first else { continue }
        if kind == InputRecord.sent {
          lines.append(Array(record.dropFirst()))
        } else {
          try? conversation.showSent(lines)
          lines = []
          try? conversation.showNotice(String(decoding: record.dropFirst(), as: UTF8.self))
        }
      }
      try? conversation.showSent(lines)
      partialRecord.removeSubrange(...end)
    }
  }

  /// The status row follows the teardown (`Teardown`).
  func show(_ state: ChatState) {
    try? conversation.setState(state)
  }

  /// SIGWINCH: draw again at the new size. SIGTSTP (Ctrl-Z): give the
  /// terminal back, stop, and on SIGCONT take it again and draw.
  /// `redrawInput` asks the sending side to draw its line (in the fork
  /// session the child hears the signals itself: nothing to do).
  func handle(_ signal: CInt, redrawInput: () -> Void) {
    switch signal {
    case SIGWINCH:
      try? conversation.redraw()
      redrawInput()
    case SIGTSTP:
      try? conversation.leave()
      mode.discardInput()
      mode.restore()
      try? kill(pid: getpid(), signal: SIGSTOP)  // stopped here until `fg` or `bg` sends SIGCONT
      mode.enterRaw()  // in the background, this stops us again (SIGTTOU) until `fg`
      try? conversation.redraw()
      redrawInput()
    default: break
    }
  }

  /// The end of the chat, every ending: the sending side's last records
  /// drawn, then the terminal given back: the conversation stays, the
  /// whole screen scrolls again, the cursor under the conversation.
  /// (`Session.endTerminal` then discards pending input and restores the
  /// modes.) Safe to call twice.
  func end() {
    guard !ended else { return }
    ended = true
    receiveFromInput()
    noticeSink = nil
    try? conversation.leave()
    fromInput.read.closeIgnoringErrors()
    if fromInputWriteOpen { fromInput.write.closeIgnoringErrors() }
  }

  private var fromInputWriteOpen = true

  /// In the fork session's parent, after fork(): the writing end is the
  /// child's.
  func closeInputEnd() {
    fromInput.write.closeIgnoringErrors()
    fromInputWriteOpen = false
  }

  // MARK: The sending side

  /// The sending side of the fork session's child and the threads
  /// session's sender: reads keys until the input ends, sends each line to
  /// the socket, and hands it to the receiving side through the pipe
  /// (first: the receiving side shows "you: …" before any reply can
  /// arrive). `requests` (threads): a byte SIGWINCH means "draw again",
  /// any other "stop". Without it, this is a process of its own, which
  /// hears SIGWINCH and SIGCONT itself.
  func runInput(session: Session, role: Role, requests: FileDescriptor?) throws(Failure) -> InputSender.End {
    var ownSignals: SignalPipe? = nil
    if requests == nil {
      ownSignals = try? SignalPipe.install([SIGWINCH, SIGCONT])
      noticeSink = { [write = fromInput.write] text in
        try? write.writeAll(InputRecord.encode(InputRecord.notice, Array(text.utf8)))
      }
    }
    defer { _ = ownSignals?.uninstall() }
    let wake = requests ?? ownSignals?.readEnd
    let receiver = requests == nil ? getppid() : getpid()
    input.size = WindowSize.current()
    try? input.draw()
    let buffer = session.buffers.input
    var poll = PollSet<InputSlot>()
    poll.watch(.keys, .standardInput)
    poll.watch(.wake, wake)
    while true {
      _ = try poll.wait(timeout: -1)
      if poll.isReady(.wake), let wake {
        var byte: UInt8 = 0
        let count = withUnsafeMutableBytes(of: &byte) { (try? wake.read(into: $0)) ?? 0 }
        if count == 1 && CInt(byte) != SIGWINCH && CInt(byte) != SIGCONT { return .stopped }
        input.size = WindowSize.current()
        try? input.draw()
      }
      guard poll.isReady(.keys) else { continue }
      let count = try orFailure("read from standard input") { () throws(Errno) in
        try FileDescriptor.standardInput.read(into: buffer)
      }
      if count == 0 {
        Trace.event(role, "eof", "stdin")
        return .inputEnded
      }
      let typed = input.take(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
      if !typed.lines.isEmpty {
        try? fromInput.write.writeAll(typed.lines.flatMap { InputRecord.encode(InputRecord.sent, $0) })
        try orFailure("write to \(session.peer)") { () throws(Errno) in
          try session.socket.writeAll(typed.wire)
        }
      }
      if typed.redrawAll {
        try? kill(pid: receiver, signal: SIGWINCH)
        input.size = WindowSize.current()
      }
      if typed.ended {
        try? input.clear()
        Trace.event(role, typed.quit ? "quit" : "eof", typed.quit ? "word typed" : "stdin")
        return .inputEnded
      }
      try? input.draw()
    }
  }

  /// The poll session's sending side: the keys of one read, edited; the
  /// lines sent are drawn at once (one thread draws both parts). Returns
  /// the bytes for the socket and whether the input is over.
  func typed(_ keys: UnsafeRawBufferPointer, role: Role) throws(Failure) -> (wire: [UInt8], ended: Bool) {
    let typed = input.take(keys)
    do {
      try conversation.showSent(typed.lines)
      if typed.redrawAll { try conversation.redraw() }
      input.size = conversation.size
      if typed.ended {
        try input.clear()
        Trace.event(role, typed.quit ? "quit" : "eof", typed.quit ? "word typed" : "stdin")
      } else {
        try input.draw()
      }
    } catch {
      throw Failure("write to standard output", error)
    }
    return (typed.wire, typed.ended)
  }

  enum InputSlot: Int, CaseIterable { case keys, wake }

  /// The poll session's sending side, after SIGWINCH or `fg`.
  func redrawInput() {
    input.size = WindowSize.current()
    try? input.draw()
  }
}
