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
  var teardown: Teardown
  var signals: SignalPipe! = nil
  /// Read from stdin, not yet written to the socket.
  var pending: [UInt8] = []
  var pendingStart = 0
  /// stdin has ended (or the quit word was typed): FIN once `pending` is out.
  var inputDone = false
  var quit: QuitWordDetector?

  init(session: Session) {
    self.session = session
    self.teardown = Teardown(session: session, role: "poll")
    self.quit = session.quitWordDetector()
  }

  func run() -> SessionResult {
    guard let signals = session.installSignals() else { return .failed }
    self.signals = signals
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
    signals.finish(role: "poll")
    return result
  }

  func loop() -> SessionResult {
    let output = OutputWriter(session: session)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Session.bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    while !teardown.isOver {
      let hasPending = pendingStart < pending.count
      let wantInput = teardown.sending && !inputDone && !hasPending
      var waiting = [
        pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(
          fd: teardown.peerOpen || hasPending ? session.socket.rawValue : -1,
          events: Int16(teardown.peerOpen ? POLLIN : 0) | Int16(hasPending ? POLLOUT : 0), revents: 0),
        pollfd(fd: wantInput ? STDIN_FILENO : -1, events: Int16(POLLIN), revents: 0),
      ]
      do throws(Failure) {
        let ready = try waitForEvents(&waiting, timeout: teardown.pollTimeout)
        if ready == 0 && teardown.lingerExpired() { break }
        if waiting[0].revents != 0 { handleSignals() }
        if waiting[2].revents != 0 { try readInput(buffer) }
        if hasPending && waiting[1].revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0 { try sendPending() }
        if teardown.peerOpen && waiting[1].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
          if try output.copyOnce(onInterrupt: handleSignals) == 0 && teardown.peerClosed() {
            teardown.sending = false  // a person: stop reading the terminal
          }
        }
        if teardown.sending && inputDone && pendingStart == pending.count { try finishSending() }
      } catch {
        notice(error.description)
        teardown.sendingFailed()
        return .failed
      }
    }
    return teardown.result
  }

  /// stdin is readable: take one block (up to the quit word's line).
  func readInput(_ buffer: UnsafeMutableRawBufferPointer) throws(Failure) {
    let count: Int
    do {
      count = try FileDescriptor.standardInput.read(into: buffer)
    } catch {
      throw Failure("read from standard input", error)
    }
    if count == 0 {
      Trace.event("poll", "eof", "stdin")
      inputDone = true
      return
    }
    var chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
    if let screen = session.screen {  // the line editor: lines for the socket
      (pending, inputDone) = try screen.typed(chunk, role: "poll")
      pendingStart = 0
      return try sendPending()
    }
    if let end = quit?.scan(chunk) {
      chunk = UnsafeRawBufferPointer(rebasing: chunk[..<end])
      Trace.event("poll", "quit", "word typed")
      inputDone = true
    }
    pending = Array(chunk)
    pendingStart = 0
    try sendPending()
  }

  /// Writes what the socket takes now of the pending block.
  func sendPending() throws(Failure) {
    while pendingStart < pending.count {
      let written: Int
      do {
        written = try pending[pendingStart...].withUnsafeBytes { bytes in
          Result { () throws(Errno) in try session.socket.write(bytes) }
        }.get()
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
    do {
      try session.socket.shutdown(CInt(SHUT_WR))
    } catch {
      throw Failure("shutdown to \(session.peer)", error)
    }
    Trace.event("poll", "shutdown", "SHUT_WR")
    teardown.inputEnded()
  }

  func handleSignals() {
    let (stop, _, screenSignals) = signals.receiveAll(role: "poll")
    if let stop {
      session.socket.closeIgnoringErrors()
      session.endTerminal()
      signals.die(of: stop, role: "poll")
    }
    for signal in screenSignals {
      session.screen?.handle(signal) { session.screen?.redrawInput() }
    }
  }
}
