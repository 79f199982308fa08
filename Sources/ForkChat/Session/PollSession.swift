import Glibc

// The poll mode: one process, one thread, and poll(2) to learn which
// descriptor is ready, as nc does. The sending side runs inline, in the
// driver's loop (SessionDriver.swift):
//
//   poll([signals, socket, stdin or the socket's room]) ──▶ whichever is ready:
//     stdin readable   → read a block into the buffer, then write it to the
//                        socket as it becomes writable (the socket is
//                        non-blocking, so a peer that does not read cannot
//                        freeze our receiving)
//     socket writable  → write what it takes of the buffer (drain); a
//                        regular file as stdin: sendfile(2) what it takes
//     socket readable  → copy to stdout (the driver)
//
// Nothing to fork, join or reap: the end of a direction is only a state.

/// The poll mode's sending side: no process, no thread, a buffer.
///
/// One buffer and one position, as netcat.c's `drainbuf(fd, buf, &bufpos)`:
/// the first `count` bytes of `buffer` were read from stdin (a person's
/// keys as the wire wants them: --line-end, the chat screen) and are not
/// written yet; a write takes what the socket takes from the front, and
/// the rest moves up (memmove). EAGAIN is no error: poll(2) says when the
/// socket has room. stdin is read only once the buffer is empty. The
/// buffer is the session's (`SessionBuffers.lines`, which only the
/// alternate mode uses otherwise): no memory is taken during the session.
final class InlineSender: SendingSide {
  let buffer: UnsafeMutableRawBufferPointer
  var count = 0
  /// stdin has ended (or the quit word was typed): FIN once the buffer is out.
  var inputDone = false
  var quit: QuitWordDetector?
  /// A person's line translated for the wire (--line-end), before it is
  /// copied into `buffer`.
  var wire: [UInt8] = []
  /// stdin is a regular file: its pages go from the page cache to the
  /// socket with sendfile(2), as much as the socket has room for each time
  /// poll(2) says it has some, never through `buffer` (as the fork mode's
  /// child sends it, `InputSender.copy`); false from the first EINVAL.
  var sendingFile: Bool
  var receiverRole: Role { .poll }

  init(session: Session) {
    buffer = session.buffers.lines
    quit = session.quitWordDetector()
    sendingFile = FileDescriptor.standardInput.isRegularFile && session.screen == nil
  }

  func start(_ driver: SessionDriver) throws(Failure) {
    // Non-blocking: a write takes what fits and never waits.
    try orFailure("fcntl") { () throws(Errno) in try driver.session.socket.setNonBlocking() }
  }

  /// stdin while nothing is pending, the socket's room while something is
  /// (or while a file is sent).
  func watched(_ driver: SessionDriver) -> (first: (FileDescriptor, CInt)?, second: (FileDescriptor, CInt)?) {
    let reading = driver.teardown.isSending && !inputDone && count == 0
    if reading && sendingFile { return (nil, (driver.session.socket, POLLOUT)) }
    return (reading ? (.standardInput, POLLIN) : nil, count == 0 ? nil : (driver.session.socket, POLLOUT))
  }

  func ready(_ driver: SessionDriver, first: Bool, second: Bool) throws(Failure) {
    if first { try readInput(driver.session) }
    if second { try count == 0 && sendingFile ? sendFile(driver.session) : drain(driver.session) }
  }

  /// The socket has room: sendfile(2) what it takes now of the file given
  /// as stdin (one call, up to 1 MiB: the receiving side gets its turn).
  func sendFile(_ session: Session) throws(Failure) {
    let sent: Int
    do {
      sent = try FileDescriptor.standardInput.sendFile(to: session.socket, count: Session.spliceSize)
    } catch .wouldBlock {
      return  // the socket is full after all: poll says when it has room
    } catch .invalidArgument {
      sendingFile = false  // not this file: nothing was sent, read(2) it instead
      return
    } catch {
      throw Failure("write to \(session.peer)", error)
    }
    if sent == 0 {
      Trace.event(.poll, "eof", "stdin")
      inputDone = true
    }
  }

  /// All our input is out: FIN.
  func afterTurn(_ driver: SessionDriver) throws(Failure) {
    guard driver.teardown.isSending && inputDone && count == 0 else { return }
    try driver.session.sendFIN(role: .poll)
    driver.apply(.inputEnded(now: Clock.now))
  }

  /// stdin is readable: take one block (up to the quit word's line; typed
  /// lines end as --line-end says), and write what the socket takes now.
  /// Bytes that go as they are read are read straight into the buffer; a
  /// person's keys that become other bytes on the wire (at most twice as
  /// many: "\r\n" for "\n") are read half a buffer at a time, elsewhere.
  func readInput(_ session: Session) throws(Failure) {
    let translated = session.screen != nil || session.translatesLineEnds
    let target =
      translated
      ? UnsafeMutableRawBufferPointer(rebasing: session.buffers.input[..<(buffer.count / 2)]) : buffer
    let read: Int
    do {
      read = try FileDescriptor.standardInput.read(into: target)
    } catch .wouldBlock {
      return  // taken by another reader of a shared, non-blocking stdin: poll again
    } catch {
      throw Failure("read from standard input", error)
    }
    if read == 0 {
      Trace.event(.poll, "eof", "stdin")
      inputDone = true
      return
    }
    let chunk = UnsafeRawBufferPointer(rebasing: target[..<read])
    if let screen = session.screen {  // the line editor: lines for the socket
      (wire, inputDone) = try screen.typed(chunk, role: .poll)
      return try take(wire, session)
    }
    var end = read
    if let quitEnd = quit?.scan(chunk) {
      end = quitEnd
      Trace.event(.poll, "quit", "word typed")
      inputDone = true
    }
    guard translated else {
      count = end
      return try drain(session)
    }
    wire.removeAll(keepingCapacity: true)
    session.options.lineEnd.translate(chunk[..<end], into: &wire)
    try take(wire, session)
  }

  /// Puts `bytes` in the (empty) buffer and writes what the socket takes.
  private func take(_ bytes: [UInt8], _ session: Session) throws(Failure) {
    bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    count = bytes.count
    try drain(session)
  }

  /// Writes what the socket takes now of the buffer; the rest moves to
  /// the front and waits.
  func drain(_ session: Session) throws(Failure) {
    var written = 0
    defer {
      if written > 0 && written < count {
        buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + written, byteCount: count - written)
      }
      count -= written
    }
    while written < count {
      do {
        written += try session.socket.write(UnsafeRawBufferPointer(rebasing: buffer[written..<count]))
      } catch .wouldBlock {
        return  // the socket is full: poll says when it has room
      } catch {
        throw Failure("write to \(session.peer)", error)
      }
    }
  }

  /// A person's Ctrl-D or the peer's end: stop reading the terminal.
  func stop(_ driver: SessionDriver) {
    guard driver.teardown.isSending else { return }
    driver.apply(.senderStopped)
  }

  /// The input line is drawn by this thread too.
  func redrawInput(_ driver: SessionDriver) {
    driver.session.screen?.redrawInput()
  }
}
