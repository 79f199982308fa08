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
  /// Read from stdin, not yet written to the socket: the bytes
  /// pendingStart..<pendingEnd of the session's input buffer, as read (no
  /// memory taken during the session), or of `typed`, when a person's keys
  /// became other bytes on the wire (--line-end, the chat screen).
  var pendingStart = 0
  var pendingEnd = 0
  var pendingIsTyped = false
  var typed: [UInt8] = []
  /// stdin has ended (or the quit word was typed): FIN once the pending
  /// bytes are out.
  var inputDone = false
  var quit: QuitWordDetector?

  init(session: Session, signals: SignalPipe) {
    self.session = session
    self.signals = signals
    self.teardown = session.makeTeardown()
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
    let buffer = session.buffers.input
    var poll = PollSet<Slot>()
    while !teardown.isOver {
      let hasPending = pendingStart < pendingEnd
      poll.watch(.signals, signals.readEnd)
      poll.watch(
        .socket, teardown.isReceiving || hasPending ? session.socket : nil,
        for: (teardown.isReceiving ? POLLIN : 0) | (hasPending ? POLLOUT : 0))
      poll.watch(.input, teardown.isSending && !inputDone && !hasPending ? .standardInput : nil)
      do throws(Failure) {
        guard try poll.wait(timeout: Clock.pollTimeout(until: teardown.lingerDeadline)) else {
          apply(.lingerEnded(now: Clock.now))
          continue
        }
        if poll.isReady(.signals) { handleSignals() }
        if poll.isReady(.input) { try readInput(buffer) }
        if hasPending && poll.isReady(.socket, for: POLLOUT | POLLERR | POLLHUP) { try sendPending() }
        if teardown.isReceiving && poll.isReady(.socket, for: POLLIN | POLLERR | POLLHUP) { receive(output) }
        if !teardown.isOver && teardown.isSending && inputDone && pendingStart == pendingEnd {
          try finishSending()
        }
      } catch {
        notice(error.description)
        apply(.sendingFailed)
      }
    }
    return teardown.result
  }

  /// The socket is readable: copies what it has to stdout.
  func receive(_ output: OutputWriter) {
    do throws(Failure) {
      if try output.copyOnce(onInterrupt: handleSignals) == 0 { apply(session.socketEnded(teardown)) }
    } catch {
      notice(error.description)
      apply(.receivingFailed)
    }
  }

  /// stdin is readable: take one block (up to the quit word's line; typed
  /// lines end as --line-end says).
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
      Trace.event(.poll, "eof", "stdin")
      inputDone = true
      return
    }
    let chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
    pendingStart = 0
    if let screen = session.screen {  // the line editor: lines for the socket
      (typed, inputDone) = try screen.typed(chunk, role: .poll)
      (pendingIsTyped, pendingEnd) = (true, typed.count)
      return try sendPending()
    }
    var end = count
    if let quitEnd = quit?.scan(chunk) {
      end = quitEnd
      Trace.event(.poll, "quit", "word typed")
      inputDone = true
    }
    if session.translatesLineEnds {
      typed.removeAll(keepingCapacity: true)
      session.options.lineEnd.translate(chunk[..<end], into: &typed)
      (pendingIsTyped, pendingEnd) = (true, typed.count)
    } else {
      (pendingIsTyped, pendingEnd) = (false, end)
    }
    try sendPending()
  }

  /// Writes what the socket takes now of the pending bytes.
  func sendPending() throws(Failure) {
    while pendingStart < pendingEnd {
      let written: Int
      do {
        if pendingIsTyped {
          written = try typed[pendingStart..<pendingEnd].withBytes { bytes throws(Errno) in
            try session.socket.write(bytes)
          }
        } else {
          written = try session.socket.write(
            UnsafeRawBufferPointer(rebasing: session.buffers.input[pendingStart..<pendingEnd]))
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
    try session.sendFIN(role: .poll)
    apply(.inputEnded(now: Clock.now))
  }

  /// One teardown event; the actions it calls for, performed. Stopping
  /// the sending side is to stop reading the terminal.
  func apply(_ event: Teardown.Event) {
    session.perform(teardown.handle(event), role: .poll) { self.apply(.senderStopped) }
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
