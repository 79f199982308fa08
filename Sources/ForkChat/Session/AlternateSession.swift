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

final class AlternateSession {
  let session: Session
  var teardown: Teardown
  var input = LineReader(.standardInput)
  var received: LineReader
  var quit: QuitWordDetector?

  init(session: Session) {
    self.session = session
    self.teardown = Teardown(session: session, role: .alternate)
    self.received = LineReader(session.socket)
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
          if session.inputIsTerminal, try peerClosesBeforeInput() {
            _ = teardown.peerClosed()
            return teardown.result
          }
          guard let line = try input.next(what: "standard input") else {
            Trace.event(.alternate, "eof", "stdin")
            try endSending()
            continue
          }
          try send(line)
          if quit?.scan(line) != nil {
            Trace.event(.alternate, "quit", "word typed")
            try endSending()
          }
        } else {
          Trace.event(.alternate, "turn", "receive: waiting for the peer's line")
          while teardown.lingerDeadline != nil, try !waitForSocket(timeout: teardown.pollTimeout) {
            teardown.lingerEnded()
            if teardown.isOver { return teardown.result }
          }
          guard let message = try received.next(what: "\(session.peer)", messageAtReadEnd: true) else {
            _ = teardown.peerClosed()
            return teardown.result
          }
          try message.withBytes { bytes throws(Failure) in try output.show(bytes) {} }
        }
        sending.toggle()
      }
    } catch {
      notice(error.description)
      return .failed
    }
  }

  /// Our turn to send, at a terminal: waits for a line on stdin, but
  /// notices if the peer closes meanwhile, so that a person is not left
  /// typing to nobody (the peer may have ended with the quit word). From a
  /// pipe the next line is still sent: the peer may only have half-closed.
  /// poll(2) watches stdin and the socket; when the socket is readable, recv(2) with MSG_PEEK looks
  /// at its next byte without taking it: end of file means the peer has
  /// gone; a byte means the peer speaks out of turn, and it stays queued
  /// for our receiving turn.
  func peerClosesBeforeInput() throws(Failure) -> Bool {
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
      poll.watch(.socket, nil)
    }
  }

  enum Slot: Int, CaseIterable { case input, socket }

  /// Sends a line read from stdin (typed: ending as --line-end says).
  func send(_ line: [UInt8]) throws(Failure) {
    var wire = line
    if session.translatesLineEnds {
      wire = []
      session.options.lineEnd.translate(line, into: &wire)
    }
    try orFailure("write to \(session.peer)") { () throws(Errno) in try session.socket.writeAll(wire) }
  }

  /// Our input has ended (or the quit word was sent): FIN, then only
  /// receive, at most the linger time.
  func endSending() throws(Failure) {
    try orFailure("shutdown to \(session.peer)") { () throws(Errno) in
      try session.socket.shutdown(CInt(SHUT_WR))
    }
    Trace.event(.alternate, "shutdown", "SHUT_WR")
    teardown.inputEnded()
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

/// Splits what a descriptor delivers into lines (each with its "\n").
struct LineReader {
  let descriptor: FileDescriptor
  private var buffered: [UInt8] = []
  private var chunk = [UInt8](repeating: 0, count: Session.bufferSize)

  init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }

  var hasBufferedData: Bool { !buffered.isEmpty }
  var hasLine: Bool { buffered.contains(10) }

  /// The next line, or nil at end of input (a last line without "\n" is
  /// returned first). With `messageAtReadEnd`, whatever one read(2)
  /// returns without a newline counts as a line too: the course's scripts
  /// send messages without one, and would otherwise never be shown.
  mutating func next(what: String, messageAtReadEnd: Bool = false) throws(Failure) -> [UInt8]? {
    while true {
      if let newline = buffered.firstIndex(of: 10) {
        defer { buffered.removeFirst(newline + 1) }
        return Array(buffered[...newline])
      }
      let count = try orFailure("read from \(what)") { () throws(Errno) in
        try chunk.withMutableBytes { bytes throws(Errno) in try descriptor.read(into: bytes) }
      }
      if count == 0 {
        guard !buffered.isEmpty else { return nil }
        defer { buffered.removeAll() }
        return buffered
      }
      buffered += chunk[..<count]
      if messageAtReadEnd && !buffered.contains(10) {
        defer { buffered.removeAll() }
        return buffered
      }
    }
  }
}
