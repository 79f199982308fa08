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
  var teardown: Teardown
  var signals: SignalPipe! = nil
  var thread = pthread_t()
  var state: SenderState! = nil
  var stopRequest: (read: FileDescriptor, write: FileDescriptor)! = nil
  var joined = false

  init(session: Session) {
    self.session = session
    self.teardown = Teardown(session: session, role: "main")
  }

  func run() -> SessionResult {
    do {
      signals = try SignalPipe.install()
      stopRequest = try makePipe()
      let done = try makePipe()
      let sender = InputSender(session: session, stopRequest: stopRequest.read, role: "sender")
      state = SenderState(sender: sender, done: done)
    } catch {
      notice("pipe: \(error)")
      session.socket.closeIgnoringErrors()
      return .failed
    }
    // The new thread inherits the signal mask: with the session's signals
    // blocked there, the kernel delivers them to the main thread.
    let oldMask = SignalSet(sessionSignals).block()
    let createTime = Clock.now
    let created = pthread_create(
      &thread, nil,
      { context in
        let state = Unmanaged<SenderState>.fromOpaque(context!).takeRetainedValue()
        Trace.event("sender", "start", "tid=\(forkchat_gettid()) sends stdin to the socket")
        state.status = Result { () throws(Failure) in try state.sender.run() }
        var byte: UInt8 = 1
        _ = write(state.done.write.rawValue, &byte, 1)
        return nil
      }, Unmanaged.passRetained(state).toOpaque())
    oldMask.setAsMask()
    guard created == 0 else {
      notice("pthread_create: \(Errno(rawValue: created))")
      closeAll()
      return .failed
    }
    Trace.event("main", "thread", "created sender (main tid=\(forkchat_gettid()))", at: createTime)
    let result = receive()
    stopSender()
    closeAll()
    signals.finish(role: "main")
    return result
  }

  /// The main thread's loop: the socket to stdout, until the peer has
  /// closed and the sender is done (or the linger time has passed).
  func receive() -> SessionResult {
    let output = OutputWriter(session: session)
    while !teardown.isOver {
      var waiting = [
        pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: teardown.peerOpen ? session.socket.rawValue : -1, events: Int16(POLLIN), revents: 0),
        pollfd(fd: joined ? -1 : state.done.read.rawValue, events: Int16(POLLIN), revents: 0),
      ]
      do throws(Failure) {
        let ready = try waitForEvents(&waiting, timeout: teardown.pollTimeout)
        if ready == 0 && teardown.lingerExpired() { break }
        if waiting[0].revents != 0 { handleSignals() }
        if waiting[2].revents != 0 { joinSender() }
        guard teardown.peerOpen, waiting[1].revents != 0 else { continue }
        if try output.copyOnce(onInterrupt: handleSignals) == 0 && teardown.peerClosed() {
          stopSender()
        }
      } catch {
        notice(error.description)
        return .failed
      }
    }
    return teardown.result
  }

  /// A stop request (SIGINT, SIGTERM, SIGHUP) ends the process once the
  /// sender thread has been stopped and joined.
  func handleSignals() {
    if let stop = signals.receive(role: "main").stop {
      stopSender()
      closeAll()
      signals.die(of: stop, role: "main")
    }
  }

  /// The sender has finished (its byte arrived): join it and apply the
  /// teardown contract to how it ended.
  func joinSender() {
    guard !joined else { return }
    pthread_join(thread, nil)
    joined = true
    Trace.event("main", "join", "sender")
    switch state.status {
    case .success(.inputEnded): teardown.inputEnded()
    case .success(.stopped): teardown.sending = false
    case .failure(let failure) where failure.peerVanished:
      teardown.peerVanished("write to")
      teardown.sendingFailed()
    case .failure(let failure):
      notice(failure.description)
      teardown.sendingFailed()
    }
  }

  /// Asks the sender to stop and joins it. The request wakes a sender
  /// waiting for input; shutdown(SHUT_WR) wakes one blocked writing to a
  /// peer that does not read (its write fails with EPIPE).
  func stopSender() {
    guard !joined else { return }
    Trace.event("main", "stop", "sender")
    var byte: UInt8 = 1
    _ = write(stopRequest.write.rawValue, &byte, 1)
    try? session.socket.shutdown(CInt(SHUT_WR))
    pthread_join(thread, nil)
    joined = true
    Trace.event("main", "join", "sender")
    teardown.sending = false
  }

  func closeAll() {
    session.socket.closeIgnoringErrors()
    for descriptor in [stopRequest.read, stopRequest.write, state.done.read, state.done.write] {
      descriptor.closeIgnoringErrors()
    }
  }
}
