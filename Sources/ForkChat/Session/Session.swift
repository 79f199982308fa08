import Glibc

// The fork session: the whole process-per-direction protocol in one file.
//
//                       fork()
//       parent ───────────┴─────────── child
//   socket ──▶ stdout              stdin ──▶ socket
//   (copySocketToOutput)           (copyInputToSocket)
//
// Ownership after fork(): the child reads stdin and writes the socket, and
// nothing else; the parent reads the socket and writes stdout, never reads
// stdin and never writes the socket (it may shut it down). Each process
// closes the descriptors it does not own.
//
// Teardown: docs/design.md has one diagram per ending.

/// What a session needs to know besides the connected socket.
public struct SessionOptions: Equatable, Sendable {
  /// A line equal to this, typed on a terminal, is sent and ends our
  /// sending (nil: no quit word).
  public var quitWord: [UInt8]? = Array("exit".utf8)
  /// Seconds to keep printing after our input has ended, waiting for the
  /// peer to close. nil: 2 s when stdin is a terminal, no limit otherwise.
  public var linger: Double? = nil
  /// Close stdin in the parent once the child has it (false with --keep,
  /// where the next session's child needs it again).
  public var parentClosesInput = true

  public init() {}

  /// The default linger when stdin is a terminal.
  public static let terminalLinger = 2.0
}

/// How a session ended, for the exit status.
public enum SessionResult: Equatable, Sendable {
  /// Both directions ended normally (exit 0).
  case finished
  /// An error ended the chat; it has been reported on stderr (exit 1).
  case failed
}

/// A connected TCP socket and the two processes that copy through it.
public struct Session {
  let socket: FileDescriptor
  let peer: SocketAddress
  let options: SessionOptions
  /// Descriptors the child must close besides the parent's own, such as a
  /// listening socket kept open by `listen --keep`.
  let closeInChild: [FileDescriptor]

  let inputIsTerminal = FileDescriptor.standardInput.isTerminal
  let outputIsTerminal = FileDescriptor.standardOutput.isTerminal

  /// Bytes per read(2) and write(2): 64 KiB, four times nc's 16 KiB.
  static let bufferSize = 64 * 1024
  /// Bytes asked of one splice(2); a pipe holds 64 KiB by default.
  static let spliceSize = 1 << 20

  public init(
    socket: FileDescriptor, peer: SocketAddress, options: SessionOptions,
    closeInChild: [FileDescriptor] = []
  ) {
    self.socket = socket
    self.peer = peer
    self.options = options
    self.closeInChild = closeInChild
  }

  /// Forks, runs the parent's half here, and returns once both processes
  /// are done: the child reaped, the socket closed. Does not return if a
  /// signal (SIGINT, SIGTERM, SIGHUP) ends the session: the process then
  /// dies of that signal, after reaping the child.
  public func run() -> SessionResult {
    let signals: SignalPipe
    do {
      signals = try SignalPipe.install()
    } catch {
      notice("pipe: \(error)")
      socket.closeIgnoringErrors()
      return .failed
    }
    if inputIsTerminal {
      let quit = options.quitWord.map { " or a line \"\(String(decoding: $0, as: UTF8.self))\"" } ?? ""
      notice("type a line and press Enter to send it; Ctrl-D\(quit) ends the chat")
    }
    // A line is sent the moment it is typed: no Nagle delay (tcp(7)),
    // which would hold a small segment back until the last one is acked.
    try? socket.setOption(CInt(IPPROTO_TCP), TCP_NODELAY, 1)
    let parentPid = getpid()
    // SIGCHLD stays blocked from before fork() until the child's pid is
    // recorded: a child that dies at once cannot be missed or mistaken.
    let oldMask = SignalSet(sessionSignals).block()
    let pid: pid_t
    do {
      pid = try forkProcess()
    } catch {
      oldMask.setAsMask()
      notice("fork: \(error)")
      _ = signals.uninstall()
      socket.closeIgnoringErrors()
      return .failed
    }
    if pid == 0 {
      // The child. Default signal actions before unblocking: a pending
      // SIGINT must kill it, not run the parent's handler.
      signals.releaseInChild()
      oldMask.setAsMask()
      guard dieWithParent(parentPid: parentPid) else { _exit(1) }
      for descriptor in closeInChild { descriptor.closeIgnoringErrors() }
      FileDescriptor.standardOutput.closeIgnoringErrors()
      _exit(copyInputToSocket())
    }
    oldMask.setAsMask()
    if options.parentClosesInput { FileDescriptor.standardInput.closeIgnoringErrors() }
    var parent = Parent(session: self, child: pid, signals: signals)
    let result = parent.copySocketToOutput()
    socket.closeIgnoringErrors()
    for signal in signals.uninstall() where signal != SIGCHLD { dieOfSignal(signal) }
    return result
  }

  // MARK: - The child: stdin to the socket

  /// Copies standard input to the socket until input ends (or the quit
  /// word is typed), then half-closes the socket with shutdown(SHUT_WR) so
  /// the peer reads end of file while our parent can still receive.
  /// Returns the child's exit status: 0 when everything was sent.
  func copyInputToSocket() -> CInt {
    let input = FileDescriptor.standardInput
    do throws(Failure) {
      if input.isPipe {
        try spliceInputToSocket()
      } else {
        try readInputWriteSocket()
      }
      do {
        try socket.shutdown(CInt(SHUT_WR))
      } catch {
        throw Failure("shutdown to \(peer)", error)
      }
      return 0
    } catch {
      notice(error.description)
      return 1
    }
  }

  /// From a pipe: splice(2) moves the bytes from the pipe to the socket in
  /// the kernel, never copying them into this process.
  func spliceInputToSocket() throws(Failure) {
    while true {
      let moved: Int
      do {
        moved = try FileDescriptor.standardInput.splice(to: socket, count: Self.spliceSize)
      } catch {
        throw Failure("write to \(peer)", error)
      }
      if moved == 0 { return }
    }
  }

  /// From a terminal or a file: read(2) into a buffer, write(2) it all.
  /// On a terminal, the quit word ends the input after its line is sent.
  func readInputWriteSocket() throws(Failure) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    var quit = options.quitWord.flatMap { inputIsTerminal ? QuitWordDetector(word: $0) : nil }
    while true {
      let count: Int
      do {
        count = try FileDescriptor.standardInput.read(into: buffer)
      } catch {
        throw Failure("read from standard input", error)
      }
      if count == 0 { return }
      var chunk = UnsafeRawBufferPointer(rebasing: buffer[..<count])
      let quitLineEnd = quit?.scan(chunk)
      if let quitLineEnd { chunk = UnsafeRawBufferPointer(rebasing: chunk[..<quitLineEnd]) }
      do {
        try socket.writeAll(chunk)
      } catch {
        throw Failure("write to \(peer)", error)
      }
      if quitLineEnd != nil { return }
    }
  }
}

// MARK: - The parent: the socket to stdout, and the teardown

/// The parent's half of a session: copies the socket to standard output
/// and decides, from the child's wait status, the end of the socket and the
/// signals received, when the session is over.
struct Parent {
  let session: Session
  let child: pid_t
  let signals: SignalPipe

  var childRunning = true
  var peerOpen = true
  var failed = false
  /// Set when the child could not send: nothing more to wait for.
  var broken = false
  /// When our input has ended: the time after which we stop waiting for the
  /// peer to close (nil: no limit).
  var lingerDeadline: Double? = nil
  var printer: TerminalPrinter?
  let outputIsPipe = FileDescriptor.standardOutput.isPipe

  init(session: Session, child: pid_t, signals: SignalPipe) {
    self.session = session
    self.child = child
    self.signals = signals
    if session.outputIsTerminal {
      let term = getenv("TERM").map { String(cString: $0) } ?? "dumb"
      printer = TerminalPrinter(colour: getenv("NO_COLOR") == nil && term != "dumb")
    }
  }

  /// Runs until the peer has closed and the child has been reaped (or the
  /// linger time has passed). Returns how the session ended.
  mutating func copySocketToOutput() -> SessionResult {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Session.bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    var rendered: [UInt8] = []
    while (peerOpen || childRunning) && !broken {
      var waiting = [
        pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: peerOpen ? session.socket.rawValue : -1, events: Int16(POLLIN), revents: 0),
      ]
      let timeout = lingerDeadline.map { CInt(max(0, ($0 - Clock.now) * 1000).rounded(.up)) } ?? -1
      let ready: CInt
      do {
        ready = try valueOrErrno { poll(&waiting, 2, timeout) }
      } catch {
        notice("poll: \(error)")
        stopChild()
        return .failed
      }
      if ready == 0, let deadline = lingerDeadline, Clock.now >= deadline {
        notice("\(session.peer) did not close within \(formatSeconds(session.lingerTime ?? 0)) s; closing")
        return failed ? .failed : .finished
      }
      if waiting[0].revents != 0 { handleSignals() }
      guard peerOpen, waiting[1].revents != 0 else { continue }

      let count: Int
      do throws(Failure) {
        count = try copyOnce(buffer: buffer, rendered: &rendered)
      } catch {
        notice(error.description)
        stopChild()
        return .failed
      }
      if count == 0 {
        peerOpen = false
        notice("\(session.peer) closed the connection")
        // A person at a terminal is not left typing to nobody; a pipe's
        // data goes on (the peer may only have shut down its sending side).
        if session.inputIsTerminal { stopChild() }
      }
    }
    return failed ? .failed : .finished
  }

  /// Copies what the socket has to standard output: spliced in the kernel
  /// when stdout is a pipe, rendered by `TerminalPrinter` when it is a
  /// terminal, else read and written unchanged. Returns the bytes taken
  /// from the socket, 0 at its end.
  mutating func copyOnce(buffer: UnsafeMutableRawBufferPointer, rendered: inout [UInt8])
    throws(Failure) -> Int
  {
    if outputIsPipe {
      while true {
        do {
          return try session.socket.splice(
            to: .standardOutput, count: Session.spliceSize, retryOnInterrupt: false)
        } catch .interrupted {
          handleSignals()
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
    } catch {
      throw Failure("read from \(session.peer)", error)
    }
    let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
    do throws(Errno) {
      if printer != nil {
        rendered.removeAll(keepingCapacity: true)
        printer!.render(bytes, into: &rendered)
        let copy = rendered  // (shares the storage: no bytes are copied)
        try copy.withUnsafeBytes { r in Result { () throws(Errno) in try writeOutput(r) } }.get()
      } else {
        try writeOutput(bytes)
      }
    } catch {
      throw Failure("write to standard output", error)
    }
    return count
  }

  /// Writes to stdout; while a full pipe or a stopped terminal blocks the
  /// write, signals still interrupt it (EINTR) and are handled.
  mutating func writeOutput(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
    try FileDescriptor.standardOutput.writeAll(bytes) { () throws(Errno) in handleSignals() }
  }

  /// Acts on the signals waiting in the self-pipe. A stop request (SIGINT,
  /// SIGTERM, SIGHUP) ends the process here, after the child is reaped.
  mutating func handleSignals() {
    let received = signals.drain()
    if let stop = received.first(where: { $0 != SIGCHLD }) {
      stopChild()
      session.socket.closeIgnoringErrors()
      _ = signals.uninstall()
      dieOfSignal(stop)
    }
    if received.contains(SIGCHLD) { reapChild() }
  }

  /// Collects the child if it has ended (SIGCHLD) and applies the teardown
  /// contract to how it ended.
  mutating func reapChild() {
    guard childRunning else { return }
    let status: WaitStatus?
    do {
      status = try waitForChild(child, noHang: true)
    } catch {
      notice("waitpid: \(error)")
      childRunning = false
      failed = true
      return
    }
    guard let status else { return }  // a SIGCHLD for a child still running
    childRunning = false
    switch status {
    case .exited(0):
      // Our input ended and all of it was sent: wait for the peer's end.
      if let linger = session.lingerTime, peerOpen { lingerDeadline = Clock.now + linger }
    case .exited:
      // The child could not send (it said why): the chat is broken.
      failed = true
      broken = true
    case .signaled(let signal):
      // The child was killed: tell the peer nothing more will come, and
      // keep printing what it still sends.
      notice("sending process \(child) killed by signal \(signal) (\(signalName(signal)))")
      failed = true
      try? session.socket.shutdown(CInt(SHUT_WR))
    }
  }

  /// Stops the child (if it is still running) and reaps it. SIGCONT after
  /// SIGTERM, so that a child stopped by Ctrl-Z also gets it at once.
  mutating func stopChild() {
    guard childRunning else { return }
    try? sendSignal(SIGTERM, to: child)
    try? sendSignal(SIGCONT, to: child)
    _ = try? waitForChild(child)
    childRunning = false
  }
}

extension Session {
  /// How long to wait for the peer's end once our input has ended.
  var lingerTime: Double? {
    options.linger ?? (inputIsTerminal ? SessionOptions.terminalLinger : nil)
  }
}
