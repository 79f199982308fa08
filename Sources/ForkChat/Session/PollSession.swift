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
  /// Read from stdin into the session's input buffer, not yet written to
  /// the socket: bytes pendingStart..<pendingEnd.
  var pendingStart = 0
  var pendingEnd = 0
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
      return .failed
    }
    let result = loop()
    session.socket.closeIgnoringErrors()
    signals.finish(role: "poll")
    return result
  }

  func loop() -> SessionResult {
    let output = OutputWriter(session: session)
    let buffer = session.buffers.input
    while !teardown.isOver {
      let hasPending = pendingStart < pendingEnd
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
        if teardown.sending && inputDone && pendingStart == pendingEnd { try finishSending() }
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
    } catch .wouldBlock {
      return  // taken by another reader of a shared, non-blocking stdin: poll again
    } catch {
      throw Failure("read from standard input", error)
    }
    if count == 0 {
      Trace.event("poll", "eof", "stdin")
      inputDone = true
      return
    }
    pendingStart = 0
    pendingEnd = count
    if let end = quit?.scan(UnsafeRawBufferPointer(rebasing: buffer[..<count])) {
      pendingEnd = end
      Trace.event("poll", "quit", "word typed")
      inputDone = true
    }
    try sendPending()
  }

  /// Writes what the socket takes now of the pending block.
  func sendPending() throws(Failure) {
    while pendingStart < pendingEnd {
      let written: Int
      do {
        let pending = UnsafeRawBufferPointer(rebasing: session.buffers.input[pendingStart..<pendingEnd])
        written = try session.socket.write(pending)
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
    if let stop = signals.receive(role: "poll").stop {
      session.socket.closeIgnoringErrors()
      signals.die(of: stop, role: "poll")
    }
  }
}
