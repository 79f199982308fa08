import Glibc

// The two copy loops: our sending side as a child process or a thread runs
// it (InputSender; the poll mode's inline sending side, PollSession.swift,
// copies in steps instead, and the alternate mode a line per turn), and
// our receiving side, the same in every mode (OutputWriter). When each
// direction ends is decided by the session driver (SessionDriver.swift)
// through the teardown (Teardown.swift).

/// Our sending side: standard input to the socket.
struct InputSender {
  let session: Session
  /// threads mode: a descriptor that becomes readable when the main thread
  /// asks the sender to stop. A process can be killed from outside; a
  /// thread cannot, so it must look for the request itself.
  var stopRequest: FileDescriptor? = nil
  /// Who sends, in --trace lines (child, sender).
  let role: Role

  enum End { case inputEnded, stopped }

  /// Copies standard input to the socket until input ends (or the quit
  /// word is typed), then half-closes the socket (`Session.sendFIN`).
  /// Returns `.stopped`, without the shutdown, if `stopRequest` fired.
  /// Throws a `Failure` naming what failed.
  func run() throws(Failure) -> End {
    let end = try copyInput()
    if end == .inputEnded { try session.sendFIN(role: role) }
    return end
  }

  /// Copies standard input to the socket until input ends (or the quit
  /// word is typed, or `stopRequest` fires), through the line editor when
  /// the chat screen is up; no FIN.
  func copyInput() throws(Failure) -> End {
    if let screen = session.screen {
      return try screen.runInput(session: session, role: role, requests: stopRequest)  // the line editor
    }
    return try copy()
  }

  /// Copies stdin to the socket. What is typed or piped a line at a time
  /// goes through a buffer with read(2) and write(2). When a read fills the
  /// whole buffer, bulk data is flowing: from a pipe, splice(2) then moves
  /// it in the kernel without copying it through this process, until a
  /// splice moves less than half a buffer (`Session.bulkSize`). A regular
  /// file is bulk from its first byte: sendfile(2) hands its pages from the
  /// page cache to the socket, no copy through this process, unless the
  /// kernel cannot for this file (EINVAL: read(2) and write(2) then). Both
  /// go through the same branch. On a terminal, each
  /// line ends on the wire as --line-end says, and the quit word ends the
  /// input once its line is sent. A stdin made non-blocking by whoever
  /// shares it (EAGAIN) is waited for with poll(2), never a failure.
  func copy() throws(Failure) -> End {
    let input = FileDescriptor.standardInput
    let buffer = session.buffers.input
    let canSplice = input.isPipe
    var splicing = false
    var sendingFile = input.isRegularFile
    var quit = session.quitWordDetector()
    var wire: [UInt8] = []  // a typed line as --line-end sends it
    while true {
      if stopRequest != nil, try waitForInput() { return .stopped }
      if sendingFile || splicing {  // in the kernel, no copy through this process
        let moved: Int
        do {
          moved =
            try sendingFile
            ? input.sendFile(to: session.socket, count: Session.spliceSize)
            : input.splice(to: session.socket, count: Session.spliceSize)
        } catch .invalidArgument where sendingFile {
          sendingFile = false  // not this file: nothing was sent, read it instead
          continue
        } catch .wouldBlock {
          // A non-blocking stdin had nothing, or a non-blocking socket (or
          // stdin's flag, which makes splice(2) non-blocking on the
          // socket's side too) had no room: wait for both.
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
        if !sendingFile { splicing = moved >= Session.bulkSize }
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
        try session.send(chunk, scratch: &wire)
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
    var poll = PollSet<Slot>()
    poll.watch(.input, .standardInput)
    poll.watch(.stopRequest, stopRequest)
    _ = try poll.wait(timeout: -1)
    return poll.isReady(.stopRequest)
  }

  enum Slot: Int, CaseIterable { case input, stopRequest }

  /// Waits until the socket can take more (or has failed: the next call
  /// says how).
  func waitForRoomInSocket() throws(Failure) {
    try orFailure("poll") { () throws(Errno) in try session.socket.waitUntilReady(for: Int16(POLLOUT)) }
  }
}

/// Our receiving side: the socket to standard output.
///
/// On a terminal, `TerminalPrinter` shows the bytes for a person; otherwise
/// they are read and written unchanged, and, while bulk data flows (a read
/// fills the whole buffer), splice(2) moves them in the kernel instead, as
/// `InputSender.copy` does: straight into a pipe, and into anything else
/// (a file, /dev/null) through a pipe of our own, since splice(2) needs a
/// pipe on one side. Text for a terminal is never spliced: it must go
/// through `PeerText`.
final class OutputWriter {
  let session: Session
  /// How bulk data reaches stdout without entering this process.
  private enum Bulk {
    /// Never: a terminal, or a stdout that refused splice(2) (EINVAL).
    case none
    /// stdout is a pipe: socket → stdout.
    case direct
    /// socket → our pipe (`relay`) → stdout.
    case throughPipe
  }
  private var bulk: Bulk
  private var splicing = false
  /// Our pipe for `.throughPipe`, made when bulk data first flows (close-on-
  /// exec, and made after fork: it is the receiving side's alone).
  private var relay: (read: FileDescriptor, write: FileDescriptor)? = nil
  private var printer: TerminalPrinter?
  private let buffer: UnsafeMutableRawBufferPointer
  private var rendered: [UInt8] = []

  init(session: Session) {
    self.session = session
    self.buffer = session.buffers.output
    if session.outputIsTerminal && session.screen == nil {
      let term = getenv("TERM").map { String(cString: $0) } ?? "dumb"
      printer = TerminalPrinter(colour: getenv("NO_COLOR") == nil && term != "dumb")
    }
    if session.outputIsTerminal || session.screen != nil {
      bulk = .none
    } else {
      bulk = FileDescriptor.standardOutput.isPipe ? .direct : .throughPipe
    }
  }

  deinit {
    relay?.read.closeIgnoringErrors()
    relay?.write.closeIgnoringErrors()
  }

  /// Copies what the socket has now to standard output. Returns the bytes
  /// taken from the socket by the last call, 0 at its end, nil if it had
  /// nothing after all (a non-blocking socket, or the wait below timed
  /// out). While a full pipe or a stopped terminal blocks the output,
  /// signals interrupt it and `onInterrupt` runs. A stdout made
  /// non-blocking by whoever shares it is waited for with poll(2) when
  /// full (EAGAIN), never a failure and never a busy loop.
  ///
  /// Once bulk data flows, and while `staying()` says that nothing else
  /// needs the caller's poll(2) (fork mode, no signal caught), it splices
  /// on instead of returning, however little each splice moves: the next
  /// splice(2) waits for the socket itself, as the splice relay does, and
  /// a poll(2) per 64 KiB is saved (the receiving side's CPU time per GiB,
  /// docs/benchmarks.md). It returns at the end of the socket, or once the
  /// socket has been idle for `stayTimeout` (SO_RCVTIMEO: EAGAIN). A
  /// signal interrupts that wait (EINTR); one caught just before the
  /// splice began cannot, and is seen when it returns: at the next bytes,
  /// at most `stayTimeout` later.
  func copyOnce(onInterrupt: () -> Void, staying: () -> Bool = { false }) throws(Failure) -> Int? {
    let splices = splicing && bulk != .none  // this step moves the bytes with splice(2)
    var moved = try copyStep(onInterrupt: onInterrupt)
    guard splices || splicing else { return moved }  // lines, read(2) and write(2)
    while bulk != .none, let last = moved, last > 0, staying(), waitIsBounded {
      splicing = true  // however little the last splice moved
      moved = try copyStep(onInterrupt: onInterrupt)
    }
    return moved
  }

  /// How long a splice(2) may wait for the socket inside `copyOnce`'s
  /// loop, in seconds: a Ctrl-C's worst delay there.
  static let stayTimeout = 0.1

  /// SO_RCVTIMEO set on the socket, the first time it is asked; false if
  /// it could not be set (then `copyOnce` returns to the caller's poll(2)
  /// after each splice). Only the receiving side reads the socket, and it
  /// polls before any other read: the timeout changes no other wait.
  private lazy var waitIsBounded = (try? session.socket.setReceiveTimeout(Self.stayTimeout)) != nil

  /// One step of `copyOnce`.
  private func copyStep(onInterrupt: () -> Void) throws(Failure) -> Int? {
    if splicing && bulk == .direct {
      while true {
        do {
          let moved = try session.socket.splice(
            to: .standardOutput, count: Session.spliceSize, retryOnInterrupt: false)
          splicing = moved >= Session.bulkSize
          return moved
        } catch .interrupted {
          onInterrupt()
        } catch .wouldBlock {
          // The socket had nothing (poll mode's is non-blocking), or stdout
          // is full and non-blocking: wait for room in stdout, at once if it
          // has some, and let the caller's poll(2) wait for the socket.
          try waitForRoomInOutput(onInterrupt: onInterrupt)
          return nil
        } catch .brokenPipe {
          throw Failure("write to standard output", .brokenPipe)
        } catch {
          throw Failure("read from \(session.peer)", error)
        }
      }
    }
    if splicing && bulk == .throughPipe, let relay = relayPipe() {
      return try spliceThrough(relay, onInterrupt: onInterrupt)
    }
    let count: Int
    do {
      count = try session.socket.read(into: buffer)
    } catch .wouldBlock {
      return nil
    } catch {
      throw Failure("read from \(session.peer)", error)
    }
    if count == 0 {
      try showEnd(onInterrupt: onInterrupt)
      return 0
    }
    try show(UnsafeRawBufferPointer(rebasing: buffer[..<count]), onInterrupt: onInterrupt)
    splicing = bulk != .none && printer == nil && count == buffer.count
    return count
  }

  /// Our pipe for splicing into a stdout that is not one, made the first
  /// time; nil (and read(2) and write(2) from then on) if no pipe can be
  /// had (EMFILE, ENFILE): an optimisation lost, not a failure.
  private func relayPipe() -> (read: FileDescriptor, write: FileDescriptor)? {
    guard relay == nil else { return relay }
    relay = try? makePipe()
    guard let relay else {
      bulk = .none
      return nil
    }
    // As large as one splice asks (1 MiB, /proc/sys/fs/pipe-max-size's
    // default): fewer calls per MiB. Refused (over a user's pipe quota),
    // the 64 KiB pipe does the same job in more calls.
    _ = fcntl(relay.write.rawValue, setPipeSize, CInt(Session.spliceSize))
    return relay
  }

  /// socket → our pipe → stdout: the bytes the socket has now, up to a
  /// pipe's worth, all of them on to stdout before it returns (nothing is
  /// left in our pipe between two calls). Returns as `copyOnce` does.
  private func spliceThrough(
    _ relay: (read: FileDescriptor, write: FileDescriptor), onInterrupt: () -> Void
  ) throws(Failure) -> Int? {
    let moved: Int
    while true {
      do {
        moved = try session.socket.splice(to: relay.write, count: Session.spliceSize, retryOnInterrupt: false)
        break
      } catch .interrupted {
        onInterrupt()
      } catch .wouldBlock {
        return nil  // poll mode's non-blocking socket had nothing: poll again
      } catch .invalidArgument {
        bulk = .none  // this socket cannot be spliced: read(2) it
        splicing = false
        return try copyStep(onInterrupt: onInterrupt)
      } catch {
        throw Failure("read from \(session.peer)", error)
      }
    }
    if moved == 0 {
      try showEnd(onInterrupt: onInterrupt)
      return 0
    }
    splicing = moved >= Session.bulkSize
    var left = moved
    while left > 0 {
      if bulk == .throughPipe {
        do {
          let out = try relay.read.splice(to: .standardOutput, count: left, retryOnInterrupt: false)
          if out == 0 { bulk = .none }  // (cannot happen while we hold the write end)
          left -= out
        } catch .interrupted {
          onInterrupt()
        } catch .invalidArgument {
          // This stdout takes no splice(2) (opened O_APPEND, a file system
          // without splice_write): what our pipe holds goes out by read(2)
          // and write(2), and so does everything after it.
          bulk = .none
          splicing = false
        } catch .wouldBlock {
          try waitForRoomInOutput(onInterrupt: onInterrupt)
        } catch {
          throw Failure("write to standard output", error)
        }
        continue
      }
      let count: Int
      do {
        count = try relay.read.read(
          into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(left, buffer.count)]))
      } catch {
        throw Failure("read from our pipe", error)
      }
      guard count > 0 else { break }  // (cannot happen while we hold the write end)
      try write(UnsafeRawBufferPointer(rebasing: buffer[..<count]), onInterrupt: onInterrupt)
      left -= count
    }
    return moved
  }

  /// Waits for room in a non-blocking stdout that had none (EAGAIN).
  private func waitForRoomInOutput(onInterrupt: () -> Void) throws(Failure) {
    try orFailure("poll") { () throws(Errno) in
      try FileDescriptor.standardOutput.waitUntilReady(for: Int16(POLLOUT)) { onInterrupt() }
    }
  }

  /// The peer has closed: on a terminal, what the rendering still held
  /// (the first bytes of a character that never came whole) is shown.
  func showEnd(onInterrupt: () -> Void) throws(Failure) {
    if let screen = session.screen { return try screen.finishPeer() }
    guard printer != nil else { return }
    rendered.removeAll(keepingCapacity: true)
    printer!.finish(into: &rendered)
    try rendered.withBytes { text throws(Failure) in try write(text, onInterrupt: onInterrupt) }
  }

  /// Writes bytes received from the peer to standard output (rendered for
  /// a terminal).
  func show(_ bytes: UnsafeRawBufferPointer, onInterrupt: () -> Void) throws(Failure) {
    if let screen = session.screen { return try screen.showPeer(bytes) }
    guard printer != nil else { return try write(bytes, onInterrupt: onInterrupt) }
    rendered.removeAll(keepingCapacity: true)
    printer!.render(bytes, into: &rendered)
    try rendered.withBytes { text throws(Failure) in try write(text, onInterrupt: onInterrupt) }
  }

  /// Writes to standard output, all of it.
  private func write(_ bytes: UnsafeRawBufferPointer, onInterrupt: () -> Void) throws(Failure) {
    try orFailure("write to standard output") { () throws(Errno) in
      try FileDescriptor.standardOutput.writeAll(bytes) { () throws(Errno) in onInterrupt() }
    }
  }
}

/// fcntl(2)'s F_SETPIPE_SZ (<fcntl.h>, Linux: F_LINUX_SPECIFIC_BASE + 7),
/// which Swift's Glibc module does not import.
private let setPipeSize: CInt = 1031

extension Session {
  /// Writes bytes read from standard input to the socket, all of them. A
  /// person's lines, typed on a terminal, end as --line-end says: they are
  /// translated into `scratch` first (`LineEnd.translate`); a pipe's bytes
  /// go as they are.
  func send(_ bytes: UnsafeRawBufferPointer, scratch: inout [UInt8]) throws(Errno) {
    guard translatesLineEnds else { return try socket.writeAll(bytes) }
    scratch.removeAll(keepingCapacity: true)
    options.lineEnd.translate(bytes, into: &scratch)
    try socket.writeAll(scratch)
  }

  /// Sends FIN with shutdown(SHUT_WR): the peer reads end of file, while
  /// our receiving side goes on. Not close(2): the socket stays open in the
  /// other process (or thread) that receives, and a close only drops this
  /// one reference to it; the kernel sends FIN when the last one goes.
  ///
  /// A connection the peer has already reset has nothing left to shut down
  /// (ENOTCONN): no error here, the receiving side reads the reset and says
  /// so, once.
  func sendFIN(role: Role) throws(Failure) {
    do {
      try socket.shutdown(CInt(SHUT_WR))
    } catch .notConnected {
      Trace.event(role, "shutdown", "SHUT_WR: not connected")
      return
    } catch {
      throw Failure("shutdown to \(peer)", error)
    }
    Trace.event(role, "shutdown", "SHUT_WR")
  }
}
