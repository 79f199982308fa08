import CForkChat
import Glibc

// The threads mode: the same two directions, driven by two threads of one
// process (POSIX threads, pthreads(7): kernel threads, each with its own
// thread id in `ps -L`):
//
//        main thread                    sender thread
//   socket ──▶ stdout               stdin ──▶ socket
//   (SessionDriver.receive)         (InputSender.run)
//
// What changes from fork: threads share one descriptor table, so nothing is
// closed "in the other one"; a thread cannot be killed from outside, so the
// main thread asks the sender to stop through a pipe and joins it
// (pthread_join instead of waitpid); signals go to the main thread only,
// because the sender blocks them.

/// What the sender thread and the main thread share.
///
/// @unchecked Sendable: `status` is written by the sender thread before it
/// writes its byte into `done`, and read by the main thread only after it
/// has read that byte; the pipe orders the two (a write(2) happens before
/// the read(2) that returns its data).
final class SenderState: @unchecked Sendable {
  let sender: InputSender
  let done: (read: FileDescriptor, write: FileDescriptor)
  var status: Result<InputSender.End, Failure> = .success(.stopped)

  init(sender: InputSender, done: (FileDescriptor, FileDescriptor)) {
    self.sender = sender
    self.done = done
  }
}

/// The threads mode's sending side: a thread of this process.
final class ThreadSender: SendingSide {
  /// The main thread asks the sender to stop through this pipe.
  let stopRequest: (read: FileDescriptor, write: FileDescriptor)
  let state: SenderState
  var thread = pthread_t()
  var joined = false
  var receiverRole: Role { .main }

  /// Creates the two pipes: the stop request, and the one the sender uses
  /// to say it is done.
  init(session: Session) throws(Errno) {
    let stopRequest = try makePipe()
    do {
      let sender = InputSender(session: session, stopRequest: stopRequest.read, role: .sender)
      state = SenderState(sender: sender, done: try makePipe())
    } catch {
      stopRequest.read.closeIgnoringErrors()
      stopRequest.write.closeIgnoringErrors()
      throw error
    }
    self.stopRequest = stopRequest
  }

  func start(_ driver: SessionDriver) throws(Failure) {
    // The new thread inherits the signal mask: with the session's signals
    // blocked there, the kernel delivers them to the main thread.
    let oldMask = SignalSet(driver.signals.signals).block()
    let createTime = Clock.now
    let created = pthread_create(
      &thread, nil,
      { context in
        let state = Unmanaged<SenderState>.fromOpaque(context!).takeRetainedValue()
        Trace.event(.sender, "start", "tid=\(forkchat_gettid()) sends stdin to the socket")
        state.status = Result { () throws(Failure) in try state.sender.run() }
        try? state.done.write.writeAll([1])
        return nil
      }, Unmanaged.passRetained(state).toOpaque())
    oldMask.setAsMask()
    guard created == 0 else {
      joined = true  // there is no thread to join
      throw Failure("pthread_create", Errno(rawValue: created))
    }
    Trace.event(.main, "thread", "created sender (main tid=\(forkchat_gettid()))", at: createTime)
  }

  func watched(_ driver: SessionDriver) -> (first: (FileDescriptor, CInt)?, second: (FileDescriptor, CInt)?) {
    (joined ? nil : (state.done.read, POLLIN), nil)
  }

  /// The sender has finished (its byte arrived): join it and tell the
  /// teardown how it ended.
  func ready(_ driver: SessionDriver, first: Bool, second: Bool) {
    guard !joined else { return }
    pthread_join(thread, nil)
    joined = true
    Trace.event(.main, "join", "sender")
    switch state.status {
    case .success(.inputEnded): driver.apply(.inputEnded(now: Clock.now))
    case .success(.stopped): driver.apply(.senderStopped)
    case .failure(let failure) where failure.peerVanished:
      driver.apply(driver.session.peerVanished(driver.teardown, what: "write to"))
      driver.apply(.sendingFailed)
    case .failure(let failure):
      notice(failure.description)
      driver.apply(.sendingFailed)
    }
  }

  /// Asks the sender to stop and joins it. The request wakes a sender
  /// waiting for input; shutdown(SHUT_WR) wakes one blocked writing to a
  /// peer that does not read (its write fails with EPIPE).
  func stop(_ driver: SessionDriver) {
    guard !joined else { return }
    Trace.event(.main, "stop", "sender")
    try? stopRequest.write.writeAll([1])
    try? driver.session.socket.shutdown(CInt(SHUT_WR))
    pthread_join(thread, nil)
    joined = true
    Trace.event(.main, "join", "sender")
    driver.apply(.senderStopped)
  }

  /// The sender thread draws the input line: a SIGWINCH byte asks it to.
  func redrawInput(_ driver: SessionDriver) {
    try? stopRequest.write.writeAll([UInt8(SIGWINCH)])
  }

  func release() {
    for descriptor in [stopRequest.read, stopRequest.write, state.done.read, state.done.write] {
      descriptor.closeIgnoringErrors()
    }
  }
}
