import CForkChat
import Glibc

// The threads mode: the same two directions, driven by two threads of one
// process (POSIX threads, pthreads(7): kernel threads, each with its own
// thread id in `ps -L`):
//
//        main thread                    sender thread
//   socket ──▶ stdout               stdin ──▶ socket
//   (ThreadSession.receive)         (InputSender.run)
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

final class ThreadSession {
  let session: Session
  let signals: SignalPipe
  /// The main thread asks the sender to stop through this pipe.
  let stopRequest: (read: FileDescriptor, write: FileDescriptor)
  let state: SenderState
  var teardown: Teardown
  var thread = pthread_t()
  var joined = false

  /// Creates the session's two pipes: the stop request, and the one the
  /// sender uses to say it is done.
  init(session: Session, signals: SignalPipe) throws(Errno) {
    self.session = session
    self.signals = signals
    self.teardown = session.makeTeardown()
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

  func run() -> SessionResult {
    // The new thread inherits the signal mask: with the session's signals
    // blocked there, the kernel delivers them to the main thread.
    let oldMask = SignalSet(signals.signals).block()
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
      notice("pthread_create: \(Errno(rawValue: created))")
      closeAll()
      _ = signals.uninstall()
      return .failed
    }
    Trace.event(.main, "thread", "created sender (main tid=\(forkchat_gettid()))", at: createTime)
    let result = receive()
    stopSender()
    closeAll()
    signals.finish(role: .main)
    return result
  }

  enum Slot: Int, CaseIterable { case signals, socket, senderDone, screen }

  /// The main thread's loop: the socket to stdout, until the peer has
  /// closed and the sender is done (or the linger time has passed).
  func receive() -> SessionResult {
    let output = OutputWriter(session: session)
    var poll = PollSet<Slot>()
    while !teardown.isOver {
      poll.watch(.signals, signals.readEnd)
      poll.watch(.socket, teardown.isReceiving ? session.socket : nil)
      poll.watch(.senderDone, joined ? nil : state.done.read)
      poll.watch(.screen, session.screen?.fromInputToWatch)
      do throws(Failure) {
        guard try poll.wait(timeout: Clock.pollTimeout(until: teardown.lingerDeadline)) else {
          apply(.lingerEnded(now: Clock.now))
          continue
        }
        if poll.isReady(.signals) { handleSignals() }
        // The chat screen: what the sender sent, drawn before any reply.
        if poll.isReady(.screen) { session.screen?.receiveFromInput() }
        if poll.isReady(.senderDone) { joinSender() }
        guard teardown.isReceiving, poll.isReady(.socket) else { continue }
        if try output.copyOnce(onInterrupt: handleSignals) == 0 { apply(session.socketEnded(teardown)) }
      } catch {
        notice(error.description)
        apply(.receivingFailed)
      }
    }
    return teardown.result
  }

  /// A stop request (SIGINT, SIGTERM, SIGHUP) ends the process once the
  /// sender thread has been stopped and joined.
  func handleSignals() {
    let (stop, _, screenSignals) = signals.receiveAll(role: .main)
    if let stop {
      stopSender()
      closeAll()
      signals.die(of: stop, role: .main)
    }
    // The sender thread draws the input line: a SIGWINCH byte asks it to.
    for signal in screenSignals {
      session.screen?.handle(signal) { try? stopRequest.write.writeAll([UInt8(SIGWINCH)]) }
    }
  }

  /// The sender has finished (its byte arrived): join it and apply the
  /// teardown contract to how it ended.
  func joinSender() {
    guard !joined else { return }
    pthread_join(thread, nil)
    joined = true
    Trace.event(.main, "join", "sender")
    switch state.status {
    case .success(.inputEnded): apply(.inputEnded(now: Clock.now))
    case .success(.stopped): apply(.senderStopped)
    case .failure(let failure) where failure.peerVanished:
      apply(session.peerVanished(teardown, what: "write to"))
      apply(.sendingFailed)
    case .failure(let failure):
      notice(failure.description)
      apply(.sendingFailed)
    }
  }

  /// Asks the sender to stop and joins it. The request wakes a sender
  /// waiting for input; shutdown(SHUT_WR) wakes one blocked writing to a
  /// peer that does not read (its write fails with EPIPE).
  func stopSender() {
    guard !joined else { return }
    Trace.event(.main, "stop", "sender")
    try? stopRequest.write.writeAll([1])
    try? session.socket.shutdown(CInt(SHUT_WR))
    pthread_join(thread, nil)
    joined = true
    Trace.event(.main, "join", "sender")
    apply(.senderStopped)
  }

  /// One teardown event; the actions it calls for, performed.
  func apply(_ event: Teardown.Event) {
    session.perform(teardown.handle(event), role: .main, stopSender: stopSender)
  }

  func closeAll() {
    session.socket.closeIgnoringErrors()
    session.endTerminal()
    for descriptor in [stopRequest.read, stopRequest.write, state.done.read, state.done.write] {
      descriptor.closeIgnoringErrors()
    }
  }
}
