import Glibc

// The poll mode: one process, one thread, and poll(2) to learn which
// descriptor is ready, as nc does:
//
//   poll([signals, socket, stdin]) ──▶ whichever is ready:
//     stdin readable   → read a block, then write it to the socket as it
//                        becomes writable (the socket is non-blocking, so a
//                        peer that does not read cannot freeze our receiving)
//     socket readable  → copy to stdout
//
// Nothing to fork, join or reap: the end of a direction is only a flag.

final class PollSession {
  let session: Session
  let signals: SignalPipe
  var teardown: Teardown
  /// Read from stdin, not yet written to the socket.
  var pending: [UInt8] = []
  var pendingStart = 0
  /// stdin has ended (or the quit word was typed): FIN once `pending` is out.
  var inputDone = false
  var quit: QuitWordDetector?

  init(session: Session, signals: SignalPipe) {
    self.session = session
    self.signals = signals
    self.teardown = Teardown(session: session, role: .poll)
    self.quit = session.quitWordDetector()
  }

  func run() -> SessionResult {
    do {
      // Non-blocking: a write takes what fits and never waits.
      try session.socket.setNonBlocking()
    } catch {
      _ = signals.uninstall()
      notice("fcntl: \(error)")
      session.socket.closeIgnoringErrors()
      session.endTerminal()
      return .failed
    }
    let result = loop()
    session.socket.closeIgnoringErrors()
    session.endTerminal()
    signals.finish(role: .poll)
    return result
  }

  enum Slot: Int, CaseIterable { case signals, socket, input }

  func loop() -> SessionResult {
    let output = OutputWriter(session: session)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Session.bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    var poll = PollSet<Slot>()
    while !teardown.isOver {
      let hasPending = pendingStart < pending.count
      poll.watch(.signals, signals.readEnd)
      poll.watch(
        .socket, teardown.isReceiving || hasPending ? session.socket : nil,
        for: (teardown.isReceiving ? POLLIN : 0) | (hasPending ? POLLOUT : 0))
      poll.watch(.input, teardown.isSending && !inputDone && !hasPending ? .standardInput : nil)
      do throws(Failure) {
        guard try poll.wait(timeout: teardown.pollTimeout) else {
          teardown.lingerEnded()
          continue
        }
        if poll.isReady(.signals) { handleSignals() }
        if poll.isReady(.input) { try readInput(buffer) }
        if hasPending && poll.isReady(.socket, for: POLLOUT | POLLERR | POLLHUP) { try sendPending() }
        if teardown.isReceiving && poll.isReady(.socket, for: POLLIN | POLLERR | POLLHUP) { receive(output) }
        if !teardown.isOver && teardown.isSending && inputDone && pendingStart == pending.count {
          try finishSending()
        }
      } catch {
        notice(error.description)
        teardown.sendingFailed()
      }
    }
    return teardown.result
  }

  /// The socket is readable: copies what it has to stdout.
  func receive(_ output: OutputWriter) {
    do throws(Failure) {
      if try output.copyOnce(onInterrupt: handleSignals) == 0 && teardown.peerClosed() {
        teardown.senderStopped()  // a person: stop reading the terminal
      }
    } catch {
      notice(error.description)
      teardown.receivingFailed()
    }
  }

  /// stdin is readable: take one block (up to the quit word's line; typed
  /// lines end as --line-end says).
  func readInput(_ buffer: UnsafeMutableRawBufferPointer) throws(Failure) {
    let count = try orFailure("read from standard input") { () throws(Errno) in
      try FileDescriptor.standardInput.read(into: buffer)
    }
    if count == 0 {
      Trace.event(.poll, "eof", "stdin")
      inputDone = true
      return
    }
    var chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
    if let screen = session.screen {  // the line editor: lines for the socket
      (pending, inputDone) = try screen.typed(chunk, role: .poll)
      pendingStart = 0
      return try sendPending()
    }
    if let end = quit?.scan(chunk) {
      chunk = UnsafeRawBufferPointer(rebasing: chunk[..<end])
      Trace.event(.poll, "quit", "word typed")
      inputDone = true
    }
    pending.removeAll(keepingCapacity: true)
    if session.translatesLineEnds {
      session.options.lineEnd.translate(chunk, into: &pending)
    } else {
      pending += chunk
    }
    pendingStart = 0
    try sendPending()
  }

  /// Writes what the socket takes now of the pending block.
  func sendPending() throws(Failure) {
    while pendingStart < pending.count {
      let written: Int
      do {
        written = try pending[pendingStart...].withBytes { bytes throws(Errno) in
          try session.socket.write(bytes)
        }
      } catch .wouldBlock {
        return  // the socket is full: poll says when it has room
      } catch {
        throw Failure("write to \(session.peer)", error)
      }
      pendingStart += written
    }
  }

  /// All our input is out: FIN.
  func finishSending() throws(Failure) {
    try orFailure("shutdown to \(session.peer)") { () throws(Errno) in
      try session.socket.shutdown(CInt(SHUT_WR))
    }
    Trace.event(.poll, "shutdown", "SHUT_WR")
    teardown.inputEnded()
  }

  func handleSignals() {
    let (stop, _, screenSignals) = signals.receiveAll(role: .poll)
    if let stop {
      session.socket.closeIgnoringErrors()
      session.endTerminal()
      signals.die(of: stop, role: .poll)
    }
    for signal in screenSignals {
      session.screen?.handle(signal) { session.screen?.redrawInput() }
    }
  }
}
