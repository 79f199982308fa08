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
// fork is the default and the heart of forkchat: ForkSession.swift. The
// copying itself is shared (Copying.swift), and so is the teardown contract
// (`Teardown`), so the modes differ only in how they are driven.

/// How the two directions of a session are driven.
public enum Mode: String, CaseIterable, Equatable, Sendable {
  case fork, alternate, threads, poll
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

  /// The memory the session copies through, taken before it starts.
  private(set) var buffers: SessionBuffers! = nil

  let inputIsTerminal = FileDescriptor.standardInput.isTerminal
  let outputIsTerminal = FileDescriptor.standardOutput.isTerminal

  /// Bytes per read(2) and write(2): 64 KiB, four times nc's 16 KiB.
  static let bufferSize = 64 * 1024
  /// Bytes asked of one splice(2); a pipe holds 64 KiB by default.
  static let spliceSize = 1 << 20

  public init(
    socket: FileDescriptor, peer: SocketAddress, options: SessionOptions, accepted: Bool,
    closeInChild: [FileDescriptor] = []
  ) {
    self.socket = socket
    self.peer = peer
    self.options = options
    self.accepted = accepted
    self.closeInChild = closeInChild
  }

  /// Runs the chat in the chosen mode and returns once it is over, the
  /// socket closed and every child process or thread gone. Does not return
  /// if a signal (SIGINT, SIGTERM, SIGHUP) ends it: the process then dies
  /// of that signal, after the others are stopped.
  public func run() -> SessionResult {
    var session = self
    do {
      session.buffers = try SessionBuffers.allocate()
    } catch {
      notice(error.description)
      socket.closeIgnoringErrors()
      return .failed
    }
    defer { session.buffers.free() }
    return session.runMode()
  }

  private func runMode() -> SessionResult {
    if inputIsTerminal {
      let quit = options.quitWord.map { " or a line \"\(String(decoding: $0, as: UTF8.self))\"" } ?? ""
      notice("type a line and press Enter to send it; Ctrl-D\(quit) ends the chat")
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
    switch options.mode {
    case .fork: return ForkSession(session: self).run()
    case .threads: return ThreadSession(session: self).run()
    case .poll: return PollSession(session: self).run()
    case .alternate: return AlternateSession(session: self).run()
    }
  }

  /// Installs the session's signal handlers and their self-pipe. If that
  /// fails, says so and closes the socket: the session cannot start.
  func installSignals() -> SignalPipe? {
    do {
      return try SignalPipe.install()
    } catch {
      notice("pipe: \(error)")
      socket.closeIgnoringErrors()
      return nil
    }
  }

  /// How long to wait for the peer's end once our input has ended.
  var lingerTime: Double? {
    options.linger ?? (inputIsTerminal ? SessionOptions.terminalLinger : nil)
  }

  /// The quit word detector for our input: only a person types a quit word,
  /// so only when stdin is a terminal.
  func quitWordDetector() -> QuitWordDetector? {
    options.quitWord.flatMap { inputIsTerminal ? QuitWordDetector(word: $0) : nil }
  }
}

/// The memory a session copies through: stdin → socket, socket → stdout,
/// and the alternate mode's lines from the peer. Taken with malloc(3) in one
/// block before the session starts (`allocateMemory`): out of memory is
/// then one line and exit 1, never a crash in the middle of a chat. A
/// forked child gets its own copy of the block, as of everything else.
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
