import Glibc

// The two copy loops every mode shares, and the teardown contract.

/// Our sending side: standard input to the socket.
struct InputSender {
  let session: Session
  /// threads mode: a descriptor that becomes readable when the main thread
  /// asks the sender to stop. A process can be killed from outside; a
  /// thread cannot, so it must look for the request itself.
  var stopRequest: FileDescriptor? = nil
  /// The trace role of whoever sends (child, sender).
  let role: String

  enum End { case inputEnded, stopped }

  /// The child's exit status when its write failed because the kernel gave
  /// up on the peer: the parent then says so (`Teardown.peerVanished`),
  /// once, since it may have met the same end on its side first.
  static let peerVanishedStatus: CInt = 2

  /// Copies standard input to the socket until input ends (or the quit
  /// word is typed), then half-closes the socket with shutdown(SHUT_WR) so
  /// that the peer reads end of file while our receiving side goes on.
  /// Returns `.stopped`, without the shutdown, if `stopRequest` fired.
  /// Throws a `Failure` naming what failed.
  func run() throws(Failure) -> End {
    let end = try copy()
    guard end == .inputEnded else { return end }
    do {
      try session.socket.shutdown(CInt(SHUT_WR))
    } catch {
      throw Failure("shutdown to \(session.peer)", error)
    }
    Trace.event(role, "shutdown", "SHUT_WR")
    return .inputEnded
  }

  /// Copies stdin to the socket. What is typed or piped a line at a time
  /// goes through a buffer with read(2) and write(2). When a read fills the
  /// whole buffer, bulk data is flowing: from a pipe, splice(2) then moves
  /// it in the kernel without copying it through this process, until a
  /// splice moves less than a buffer's worth. On a terminal, the quit word
  /// ends the input once its line is sent. A stdin made non-blocking by
  /// whoever shares it (EAGAIN) is waited for with poll(2), never a failure.
  func copy() throws(Failure) -> End {
    let input = FileDescriptor.standardInput
    let buffer = session.buffers.input
    let canSplice = input.isPipe
    var splicing = false
    var quit = session.quitWordDetector()
    while true {
      if stopRequest != nil, try waitForInput() { return .stopped }
      if splicing {
        let moved: Int
        do {
          moved = try input.splice(to: session.socket, count: Session.spliceSize)
        } catch .wouldBlock {
          // A non-blocking stdin had nothing, or its flag made splice(2)
          // non-blocking on the socket's side too: wait for both.
          if try waitForInput() { return .stopped }
          try waitForRoomInSocket()
          continue
        } catch {
          throw writeFailure(error)
        }
        if moved == 0 {
          Trace.event(role, "eof", "stdin")
          return .inputEnded
        }
        splicing = moved >= Session.bufferSize
        continue
      }
      let count: Int
      do {
        count = try input.read(into: buffer)
      } catch .wouldBlock {
        if try waitForInput() { return .stopped }
        continue
      } catch {
        throw Failure("read from standard input", error)
      }
      if count == 0 {
        Trace.event(role, "eof", "stdin")
        return .inputEnded
      }
      splicing = canSplice && count == buffer.count
      var chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
      let quitLineEnd = quit?.scan(chunk)
      if let quitLineEnd { chunk = UnsafeRawBufferPointer(rebasing: chunk[..<quitLineEnd]) }
      do {
        try session.socket.writeAll(chunk)
      } catch {
        throw writeFailure(error)
      }
      if quitLineEnd != nil {
        Trace.event(role, "quit", "word typed")
        return .inputEnded
      }
    }
  }

  /// Why a write to the peer failed. Once the kernel has given up on the
  /// peer, the reason is that it timed out, even when this call only got
  /// EPIPE: the ETIMEDOUT went to another call (the receiving side's read,
  /// or an earlier splice, which returns the bytes it moved and drops the
  /// error), and "Broken pipe" would mislead.
  func writeFailure(_ error: Errno) -> Failure {
    guard session.socket.kernelGaveUpOnPeer else { return Failure("write to \(session.peer)", error) }
    return Failure("write to \(session.peer)", error == .brokenPipe ? .timedOut : error, peerVanished: true)
  }

  /// Waits until standard input is readable or, with a stop request
  /// descriptor, the request is; returns true for a stop request.
  func waitForInput() throws(Failure) -> Bool {
    var waiting = [
      pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
      pollfd(fd: stopRequest?.rawValue ?? -1, events: Int16(POLLIN), revents: 0),
    ]
    _ = try waitForEvents(&waiting, timeout: -1)
    return waiting[1].revents != 0
  }

  /// Waits until the socket can take more (or has failed: the next call
  /// says how).
  func waitForRoomInSocket() throws(Failure) {
    do {
      try session.socket.waitUntilReady(for: Int16(POLLOUT))
    } catch {
      throw Failure("poll", error)
    }
  }
}

/// Our receiving side: the socket to standard output.
///
/// On a terminal, `TerminalPrinter` shows the bytes for a person; otherwise
/// they are read and written unchanged, and, while bulk data flows into a
/// pipe (a read fills the whole buffer), splice(2) moves them in the kernel
/// instead, as `InputSender.copy` does.
final class OutputWriter {
  let session: Session
  let outputIsPipe = FileDescriptor.standardOutput.isPipe
  private var splicing = false
  private var printer: TerminalPrinter?
  private let buffer: UnsafeMutableRawBufferPointer
  private var rendered: [UInt8] = []

  init(session: Session) {
    self.session = session
    self.buffer = session.buffers.output
    if session.outputIsTerminal {
      let term = getenv("TERM").map { String(cString: $0) } ?? "dumb"
      printer = TerminalPrinter(colour: getenv("NO_COLOR") == nil && term != "dumb")
    }
  }

  /// Copies what the socket has now to standard output. Returns the bytes
  /// taken from the socket, 0 at its end, nil if it had nothing after all
  /// (a non-blocking socket). While a full pipe or a stopped terminal
  /// blocks the output, signals interrupt it and `onInterrupt` runs. A
  /// stdout made non-blocking by whoever shares it is waited for with
  /// poll(2) when full (EAGAIN), never a failure and never a busy loop.
  func copyOnce(onInterrupt: () -> Void) throws(Failure) -> Int? {
    if splicing {
      while true {
        do {
          let moved = try session.socket.splice(
            to: .standardOutput, count: Session.spliceSize, retryOnInterrupt: false)
          splicing = moved >= Session.bufferSize
          return moved
        } catch .interrupted {
          onInterrupt()
        } catch .wouldBlock {
          // The socket had nothing (poll mode's is non-blocking), or stdout
          // is full and non-blocking: wait for room in stdout, at once if it
          // has some, and let the caller's poll(2) wait for the socket.
          do {
            try FileDescriptor.standardOutput.waitUntilReady(for: Int16(POLLOUT)) { onInterrupt() }
          } catch {
            throw Failure("poll", error)
          }
          return nil
        } catch .brokenPipe {
          throw Failure("write to standard output", .brokenPipe)
        } catch {
          throw Failure("read from \(session.peer)", error)
        }
      }
    }
    let count: Int
    do {
      count = try session.socket.read(into: buffer)
    } catch .wouldBlock {
      return nil
    } catch {
      throw Failure("read from \(session.peer)", error)
    }
    try show(UnsafeRawBufferPointer(rebasing: buffer[..<count]), onInterrupt: onInterrupt)
    splicing = outputIsPipe && printer == nil && count == buffer.count
    return count
  }

  /// Writes bytes received from the peer to standard output (rendered for
  /// a terminal).
  func show(_ bytes: UnsafeRawBufferPointer, onInterrupt: () -> Void) throws(Failure) {
    let output = FileDescriptor.standardOutput
    do throws(Errno) {
      if printer == nil {
        try output.writeAll(bytes) { () throws(Errno) in onInterrupt() }
        return
      }
      rendered.removeAll(keepingCapacity: true)
      printer!.render(bytes, into: &rendered)
      try rendered.withUnsafeBytes { text in
        Result { () throws(Errno) in try output.writeAll(text) { () throws(Errno) in onInterrupt() } }
      }.get()
    } catch {
      throw Failure("write to standard output", error)
    }
  }
}

/// The teardown contract (README, "How a chat ends"), shared by every
/// mode: when the session is over, and what to do when each direction
/// ends (the alternate mode uses its linger and its notices; its turns
/// decide the rest).
struct Teardown {
  let session: Session
  let role: String
  /// Our sending side (child, sender thread, stdin) is still going.
  var sending = true
  var peerOpen = true
  var failed = false
  /// Set when sending failed: nothing more to wait for.
  var broken = false
  /// A vanished peer has been reported (by `peerVanished`).
  var vanishReported = false
  /// Once our input has ended: when we stop waiting for the peer to close
  /// (nil: no limit).
  var lingerDeadline: Double? = nil

  init(session: Session, role: String) {
    self.session = session
    self.role = role
  }

  var isOver: Bool { broken || (!sending && !peerOpen) }

  /// Our input ended and all of it was sent, FIN included: wait for the
  /// peer's end, at most the linger time.
  mutating func inputEnded() {
    sending = false
    if peerOpen, let linger = session.lingerTime { lingerDeadline = Clock.now + linger }
  }

  /// Sending failed (and said why): the chat is broken.
  mutating func sendingFailed() {
    sending = false
    failed = true
    broken = true
  }

  /// The socket's end of file was read: the peer's FIN, as a rule. Returns
  /// true if our sending side must now be stopped: a person at a terminal
  /// is not left typing to nobody, while a pipe's data goes on (the peer
  /// may only have shut down its sending side).
  ///
  /// Or the kernel gave up on a peer that vanished, and the ETIMEDOUT it
  /// keeps for one call went to our sending side: then the end is no FIN,
  /// and the sending side is stopped (it can only fail).
  mutating func peerClosed() -> Bool {
    peerOpen = false
    Trace.event(role, "eof", "socket")
    if session.socket.kernelGaveUpOnPeer {
      peerVanished("read from")
      return sending
    }
    notice("\(session.peer) closed the connection")
    return session.inputIsTerminal && sending
  }

  /// The kernel gave up on the peer (no answer to retransmissions or
  /// keepalive probes, `--dead-peer`), met by `what` ("read from", "write
  /// to"). Said once: the receiving and the sending side may both meet it.
  /// The error is the one still waiting on the socket, if the other side
  /// did not take it: ETIMEDOUT, or the ICMP error that came before.
  mutating func peerVanished(_ what: String) {
    failed = true
    guard !vanishReported else { return }
    vanishReported = true
    let error = (try? session.socket.pendingError()) ?? nil
    notice("\(what) \(session.peer): \(error ?? .timedOut)")
  }

  /// The poll(2) timeout until the linger deadline, in ms (-1: none).
  var pollTimeout: CInt {
    lingerDeadline.map { CInt(max(0, ($0 - Clock.now) * 1000).rounded(.up)) } ?? -1
  }

  /// Whether the linger time is over; says so on stderr if it is.
  func lingerExpired() -> Bool {
    guard let deadline = lingerDeadline, Clock.now >= deadline else { return false }
    let linger = formatSeconds(session.lingerTime ?? 0)
    notice("\(session.peer) did not close within \(linger) s; closing")
    return true
  }

  var result: SessionResult { failed ? .failed : .finished }
}
