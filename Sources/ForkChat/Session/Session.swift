import Glibc

// A session: one connected socket, and the two directions of the chat
//
//     stdin ──▶ socket      (our sending side)
//     socket ──▶ stdout     (our receiving side)
//
// driven in one of four ways, the forms the course walks through:
//
// | mode      | who drives the two directions                              |
// |-----------|------------------------------------------------------------|
// | fork      | two processes: the child sends, the parent receives        |
// | threads   | two threads of one process: a sender thread, the main one  |
// | poll      | one thread: poll(2) says which side is ready               |
// | alternate | one thread, in turns: send a line, wait for one, repeat    |
//
// fork is the default and the heart of forkchat: ForkSession.swift. One
// driver (SessionDriver.swift) runs fork, threads and poll: the receiving
// side, the signals, the teardown contract (`Teardown`) and the release
// of everything are its own; the modes differ only in how the sending side
// runs (`SendingSide`: a child process, a thread, inline). The alternate
// mode takes turns instead (AlternateSession.swift says why).

/// How the two directions of a session are driven.
public enum Mode: String, CaseIterable, Equatable, Sendable {
  case fork, threads, poll, alternate
}

/// Who speaks first in the alternate mode.
public enum Turn: String, CaseIterable, Equatable, Sendable {
  case send, receive
}

/// What a session needs to know besides the connected socket.
public struct SessionOptions: Equatable, Sendable {
  public var mode = Mode.fork
  /// alternate mode: who starts (nil: the connecting side sends first and
  /// the listening side waits).
  public var first: Turn? = nil
  /// A line equal to this, typed on a terminal, is sent and ends our
  /// sending (nil: no quit word).
  public var quitWord: [UInt8]? = Array("exit".utf8)
  /// How a line typed on a terminal ends on the wire (input from a pipe
  /// or a file is sent as it is).
  public var lineEnd = LineEnd.lf
  /// Seconds to keep printing after our input has ended, waiting for the
  /// peer to close. nil: 2 s when stdin is a terminal, no limit otherwise.
  public var linger: Double? = nil
  /// Seconds after which a peer that no longer answers counts as gone
  /// (TCP keepalive and TCP_USER_TIMEOUT, `detectDeadPeer`); 0: never
  /// (the kernel's defaults).
  public var deadPeer = SessionOptions.defaultDeadPeer
  /// Close stdin in the parent once the child has it (false with --keep,
  /// where the next session's child needs it again).
  public var parentClosesInput = true
  /// On a terminal, the line-by-line chat (the kernel edits the line, "< "
  /// marks the peer) instead of the chat screen.
  public var plain = false

  public init() {}

  /// The default linger when stdin is a terminal.
  public static let terminalLinger = 2.0

  /// 60 s: a person whose peer's machine went to sleep, or whose Wi-Fi is
  /// gone, learns it within about a minute, whether the chat is idle or
  /// busy; an outage shorter than that (a roaming handover, a router
  /// restarting) loses nothing, since TCP retransmits throughout. Without
  /// it, an idle chat never learns, and a busy one after ~15 minutes.
  public static let defaultDeadPeer = 60.0
}

/// How a session ended, for the exit status.
public enum SessionResult: Equatable, Sendable {
  /// Both directions ended normally (exit 0).
  case finished
  /// An error ended the chat; it has been reported on stderr (exit 1).
  case failed
}

/// A connected TCP socket and what drives its two directions.
public struct Session {
  let socket: FileDescriptor
  let peer: SocketAddress
  let options: SessionOptions
  /// True on the side that accepted the connection (alternate mode: it
  /// waits first).
  let accepted: Bool
  /// Descriptors a forked child must close besides its parent's own, such
  /// as a listening socket kept open by `listen --keep`.
  let closeInChild: [FileDescriptor]

  /// The memory the session copies through, taken before it starts and
  /// given back when `run` returns.
  let buffers: SessionBuffers

  let inputIsTerminal = FileDescriptor.standardInput.isTerminal
  let outputIsTerminal = FileDescriptor.standardOutput.isTerminal
  /// The terminal's modes when stdin is one (restored, and its pending
  /// input discarded, at the end); the chat screen when it is up (Screen/).
  var terminal: TerminalMode? = nil
  var screen: Screen? = nil

  /// Bytes per read(2) and write(2): 64 KiB. netcat-openbsd 1.219 (the nc
  /// `make bench` runs) reads and writes 16 KiB at a time (BUFSIZE in
  /// netcat.c; seen with strace: read(0, …, 16384)).
  static let bufferSize = 64 * 1024
  /// Bytes asked of one splice(2); a pipe holds 64 KiB by default.
  static let spliceSize = 1 << 20
  /// A splice(2) that moves at least this much (half a buffer) says that
  /// bulk data still flows; less, and the copy goes back to read(2) and
  /// write(2), for lines. Not a whole buffer: from a TCP socket into a
  /// 64 KiB pipe, a splice moves 15 pages of its 16 (61440 bytes, seen with
  /// strace), and every other call would be a read.
  static let bulkSize = bufferSize / 2

  /// Takes the session's memory (`SessionBuffers`); throws a `Failure` if
  /// there is none to be had.
  public init(
    socket: FileDescriptor, peer: SocketAddress, options: SessionOptions, accepted: Bool,
    closeInChild: [FileDescriptor] = []
  ) throws(Failure) {
    self.socket = socket
    self.peer = peer
    self.options = options
    self.accepted = accepted
    self.closeInChild = closeInChild
    self.buffers = try SessionBuffers.allocate()
  }

  /// Runs the chat in the chosen mode and returns once it is over, the
  /// socket closed, every child process or thread gone, the buffers given
  /// back. Does not return if a signal (SIGINT, SIGTERM, SIGHUP) ends it:
  /// the process then dies of that signal, after the others are stopped.
  public func run() -> SessionResult {
    defer { buffers.free() }
    if inputIsTerminal {
      let quit = options.quitWord.map { " or a line \"\(String(decoding: $0, as: UTF8.self))\"" } ?? ""
      notice("type a line, Enter sends it; Ctrl-D\(quit) ends the chat")
    }
    // A line is sent the moment it is typed: no Nagle delay (tcp(7)),
    // which would hold a small segment back until the last one is acked.
    try? socket.setOption(CInt(IPPROTO_TCP), TCP_NODELAY, 1)
    // A peer that vanishes without a word is noticed (docs/design.md).
    do {
      try socket.detectDeadPeer(after: options.deadPeer)
    } catch {
      notice("\(error); a peer that vanishes may go unnoticed")
    }
    // The terminal, if any, is taken here, before any fork or thread: its
    // modes saved, and the chat screen drawn when it suits (Screen.start).
    var session = self
    session.terminal = inputIsTerminal ? TerminalMode.save() : nil
    session.screen = Screen.start(for: session)
    if options.mode == .alternate { return AlternateSession(session: session).run() }
    // One driver; the modes differ in how the sending side runs.
    return session.withSignals { signals in
      let sender: any SendingSide
      do throws(Errno) {
        sender = try session.sendingSide()
      } catch {
        _ = signals.uninstall()
        return session.cannotStart(error)
      }
      return SessionDriver(session: session, signals: signals, sender: sender).run()
    }
  }

  /// The sending side the mode asks for (its pipes, for a thread).
  func sendingSide() throws(Errno) -> any SendingSide {
    switch options.mode {
    case .threads: try ThreadSender(session: self)
    case .poll: InlineSender(session: self)
    case .fork, .alternate: ForkSender()  // (alternate takes turns, without the driver)
    }
  }

  /// Gives the terminal back, on every ending (the sending side already
  /// stopped): the screen's last update, then what was typed and not sent
  /// is discarded (tcflush) so that it never reaches the shell, and the
  /// modes are restored. Nothing to do when stdin is not a terminal.
  func endTerminal() {
    screen?.end()
    terminal?.end()
  }

  /// The signals a session's receiving side handles: the session's, and
  /// the screen's when it is up.
  var handledSignals: [CInt] { sessionSignals + (screen == nil ? [] : Screen.signals) }

  /// Descriptors that only the receiving side of a fork session owns: the
  /// child closes them.
  var parentOnly: [FileDescriptor] {
    [terminal?.terminal, screen?.fromInput.read].compactMap { $0 }
  }

  /// Runs `body` with the session's signal handlers installed, and gives it
  /// their self-pipe (Process/Signals.swift), which its poll(2) loop
  /// watches. If they cannot be installed, or `body` cannot make the pipes
  /// it needs, says so, closes the socket and gives the terminal back: the
  /// session cannot start.
  func withSignals(_ body: (SignalPipe) -> SessionResult) -> SessionResult {
    let signals: SignalPipe
    do {
      signals = try SignalPipe.install(handledSignals)
    } catch {
      return cannotStart(error)
    }
    return body(signals)
  }

  fileprivate func cannotStart(_ error: Errno) -> SessionResult {
    notice("pipe: \(error)")
    socket.closeIgnoringErrors()
    endTerminal()
    return .failed
  }

  /// How long to wait for the peer's end once our input has ended.
  var lingerTime: Double? {
    options.linger ?? (inputIsTerminal ? SessionOptions.terminalLinger : nil)
  }

  /// Whether what we read from stdin must go through `LineEnd.translate`:
  /// only a person's lines, typed on a terminal, and only if they do not
  /// end in "\n" on the wire already.
  var translatesLineEnds: Bool { inputIsTerminal && options.lineEnd != .lf }

  /// The quit word detector for our input: only a person types a quit word,
  /// so only when stdin is a terminal.
  func quitWordDetector() -> QuitWordDetector? {
    options.quitWord.flatMap { inputIsTerminal ? QuitWordDetector(word: $0) : nil }
  }
}

/// The memory a session copies through: stdin → socket, socket → stdout,
/// and a third: the alternate mode's lines from the peer, or the poll
/// mode's bytes waiting for room in the socket (`InlineSender`). Taken with
/// malloc(3) in one block before the session starts (`allocateMemory`):
/// out of memory is then one line and exit 1, never a crash in the middle
/// of a chat. A forked child gets its own copy of the block, as of
/// everything else.
struct SessionBuffers {
  let input: UnsafeMutableRawBufferPointer
  let output: UnsafeMutableRawBufferPointer
  let lines: UnsafeMutableRawBufferPointer
  private let block: UnsafeMutableRawBufferPointer

  static func allocate() throws(Failure) -> SessionBuffers {
    let size = Session.bufferSize
    let block = try allocateMemory(3 * size, for: "the session's buffers")
    return SessionBuffers(
      input: UnsafeMutableRawBufferPointer(rebasing: block[..<size]),
      output: UnsafeMutableRawBufferPointer(rebasing: block[size..<2 * size]),
      lines: UnsafeMutableRawBufferPointer(rebasing: block[(2 * size)...]), block: block)
  }

  func free() { freeMemory(block) }
}
