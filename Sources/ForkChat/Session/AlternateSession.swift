import Glibc

// The alternate mode: the course's turn-taking chat. One process, one
// thread, and a fixed order:
//
//   repeat: read a line from stdin, send it; wait for the peer's line,
//           print it
//
// The listening side starts by waiting, the connecting side by sending
// (--first changes that). If both start by waiting, each blocks in read(2)
// on the socket for a line the other will never send: a deadlock, which
// the course asks about. Only a signal (Ctrl-C) gets them out; --trace
// shows both sides waiting on the socket.
//
// It keeps the teardown contract of the other modes: once the peer has no
// more turns (its end of file), the rest of our input from a pipe is still
// sent, and a person at a terminal is done. Memory stays bounded: a line
// is read and sent in pieces of at most one buffer (64 KiB), so a stream
// without a newline is forwarded as it comes, and a reset is seen at once.
//
// Why it is not a `SendingSide` of the session driver (SessionDriver.swift):
// the driver's loop receives whenever the socket is readable, while the
// sending side runs beside it; here the two directions never run at the
// same time, and the order of the turns is the very thing the mode shows
// (its deadlock included). As a sending side it would have to hold the
// driver's receiving back until its line is sent, which is a different
// loop, not a variant of one part. It shares what does not depend on the
// order: the teardown contract (`Teardown`, the same events and actions),
// InputSender for the rest of a pipe, and OutputWriter.

final class AlternateSession {
  let session: Session
  var teardown: Teardown
  var input: LineReader
  var received: LineReader
  var quit: QuitWordDetector?

  init(session: Session) {
    self.session = session
    self.teardown = session.makeTeardown()
    self.input = LineReader(.standardInput, storage: session.buffers.input)
    self.received = LineReader(session.socket, storage: session.buffers.lines)
    self.quit = session.quitWordDetector()
  }

  /// Alternates until the peer closes. When our input ends, FIN goes out
  /// and we only receive, at most the linger time.
  func run() -> SessionResult {
    defer {
      session.socket.closeIgnoringErrors()
      session.endTerminal()  // line by line: pending input discarded
    }
    let output = OutputWriter(session: session)
    var sending = (session.options.first ?? (session.accepted ? .receive : .send)) == .send
    do throws(Failure) {
      while true {
        if sending && teardown.isSending {
          Trace.event(.alternate, "turn", "send: waiting for a line on stdin")
          if session.inputIsTerminal { notice("your turn: type a line") }
          if try peerEndsBeforeInput() {
            return try peerEnded(output)
          }
          try sendLine()
        } else {
          Trace.event(.alternate, "turn", "receive: waiting for the peer's line")
          while teardown.lingerDeadline != nil,
            try !waitForSocket(timeout: Clock.pollTimeout(until: teardown.lingerDeadline))
          {
            apply(.lingerEnded(now: Clock.now))
            if teardown.isOver { return teardown.result }
          }
          guard let message = try received.next(what: "\(session.peer)", messageAtReadEnd: true) else {
            return try peerEnded(output)
          }
          try output.show(message) {}
        }
        sending.toggle()
      }
    } catch {
      notice(error.description)
      return .failed
    }
  }

  /// Our turn: one line from stdin, sent as it is read, in pieces of at
  /// most one buffer; or, at the end of input, FIN.
  func sendLine() throws(Failure) {
    while true {
      guard let piece = try input.next(what: "standard input") else {
        Trace.event(.alternate, "eof", "stdin")
        try endSending()
        return
      }
      // A line without "\n" goes on until there is one; at the end of
      // input, FIN follows it in the same turn.
      let lineEnds = piece.last == 10
      try send(piece)
      if quit?.scan(piece) != nil {
        Trace.event(.alternate, "quit", "word typed")
        try endSending()
        return
      }
      if lineEnds { return }
    }
  }

  /// The peer has ended (its FIN was read). A person at a terminal is done;
  /// from a pipe, the peer has no more turns but may still read (it may
  /// only have half-closed): the rest of our input goes to it, then FIN.
  func peerEnded(_ output: OutputWriter) throws(Failure) -> SessionResult {
    try output.showEnd {}  // what its last bytes left waiting
    var stop = false  // a person at a terminal is done
    session.perform(teardown.handle(session.socketEnded(teardown)), role: .alternate) { stop = true }
    if stop || !teardown.isSending { return teardown.result }
    Trace.event(.alternate, "turn", "send: the rest of stdin, the peer has ended")
    if let rest = input.takeBuffered() { try send(rest) }
    _ = try InputSender(session: session, role: .alternate).run()
    apply(.inputEnded(now: Clock.now))
    return teardown.result
  }

  /// Our turn to send: waits for stdin, but notices if the peer ends or
  /// fails meanwhile. poll(2) watches stdin and the socket; when the socket
  /// is readable, recv(2) with MSG_PEEK looks at its next byte without
  /// taking it: end of file means the peer has no more turns; a byte means
  /// the peer speaks out of turn, and it stays queued for our receiving
  /// turn; an error (a reset, a dead peer) ends the chat.
  func peerEndsBeforeInput() throws(Failure) -> Bool {
    if input.hasLine { return false }
    var poll = PollSet<Slot>()
    poll.watch(.input, .standardInput)
    poll.watch(.socket, received.hasBufferedData ? nil : session.socket)
    while true {
      _ = try poll.wait(timeout: -1)
      if poll.isReady(.input) { return false }
      guard poll.isReady(.socket) else { continue }
      var byte: [UInt8] = [0]
      let peeked = try orFailure("read from \(session.peer)") { () throws(Errno) in
        try byte.withMutableBytes { bytes throws(Errno) in
          try session.socket.receive(into: bytes, flags: CInt(MSG_PEEK))
        }
      }
      if peeked == 0 { return true }
      poll.watch(.socket, nil)  // the peer speaks out of turn: its bytes wait for our receiving turn
    }
  }

  enum Slot: Int, CaseIterable { case input, socket }

  /// Sends bytes read from stdin; a person's line ends as --line-end says.
  func send(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
    var wire: [UInt8] = []
    try orFailure("write to \(session.peer)") { () throws(Errno) in try session.send(bytes, scratch: &wire) }
  }

  /// Our input has ended (or the quit word was sent): FIN, then only
  /// receive, at most the linger time.
  func endSending() throws(Failure) {
    try session.sendFIN(role: .alternate)
    apply(.inputEnded(now: Clock.now))
  }

  /// One teardown event; the actions it calls for, performed.
  func apply(_ event: Teardown.Event) {
    session.perform(teardown.handle(event), role: .alternate)
  }

  /// Waits until the socket is readable or `timeout` ms pass (false).
  func waitForSocket(timeout: CInt) throws(Failure) -> Bool {
    if received.hasBufferedData { return true }
    var poll = PollSet<SocketSlot>()
    poll.watch(.socket, session.socket)
    return try poll.wait(timeout: timeout)
  }

  enum SocketSlot: Int, CaseIterable { case socket }
}

/// Splits what a descriptor delivers into lines (each with its "\n"),
/// through a fixed buffer: a line longer than the buffer comes in pieces
/// of a buffer each, so memory stays bounded whatever arrives, and no byte
/// is looked at twice.
struct LineReader {
  let descriptor: FileDescriptor
  let storage: UnsafeMutableRawBufferPointer
  /// The bytes read and not yet returned: storage[start..<end].
  private var start = 0
  private var end = 0

  init(_ descriptor: FileDescriptor, storage: UnsafeMutableRawBufferPointer) {
    self.descriptor = descriptor
    self.storage = storage
  }

  var hasBufferedData: Bool { start < end }
  var hasLine: Bool { newline() != nil }

  /// The next line, or nil at end of input (a last line without "\n" is
  /// returned first). A line that fills the whole buffer without a newline
  /// is returned as it is: the rest of the line comes next. With
  /// `messageAtReadEnd`, whatever a read(2) returned without a newline
  /// counts as a line too: the course's scripts send messages without one,
  /// and would otherwise never be shown. The bytes stay valid until the
  /// next call.
  mutating func next(what: String, messageAtReadEnd: Bool = false) throws(Failure) -> UnsafeRawBufferPointer?
  {
    while true {
      if let newline = newline() {
        return take(upTo: newline + 1)
      }
      if (messageAtReadEnd && start < end) || end - start == storage.count {
        return take(upTo: end)
      }
      if start > 0 {  // move what is left to the front, to read after it
        storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: end - start)
        end -= start
        start = 0
      }
      let count = try orFailure("read from \(what)") { () throws(Errno) in
        try descriptor.readWaiting(into: UnsafeMutableRawBufferPointer(rebasing: storage[end...]))
      }
      if count == 0 {
        return start < end ? take(upTo: end) : nil
      }
      end += count
    }
  }

  /// What has been read and not returned yet, if anything.
  mutating func takeBuffered() -> UnsafeRawBufferPointer? {
    start < end ? take(upTo: end) : nil
  }

  private mutating func take(upTo index: Int) -> UnsafeRawBufferPointer {
    defer { start = index }
    return UnsafeRawBufferPointer(rebasing: storage[start..<index])
  }

  /// The index of the first "\n" among the buffered bytes (memchr(3)).
  private func newline() -> Int? {
    guard start < end, let found = memchr(storage.baseAddress! + start, 10, end - start) else { return nil }
    return storage.baseAddress!.distance(to: found)
  }
}
