import Glibc

// The one session driver, and the one part the modes differ in: how our
// sending side (stdin ──▶ socket) runs. As UNP chapters 5 and 6 present
// str_cli, the variants side by side behind one signature:
//
// | sending side            | file              | starts      | its end reaches the loop    |
// |-------------------------|-------------------|-------------|-----------------------------|
// | a child process (fork)  | ForkSession.swift | fork()      | SIGCHLD, waitpid(2)         |
// | a thread (threads)      | ThreadSession.swift | pthread_create | a byte in a pipe, pthread_join |
// | inline (poll)           | PollSession.swift | nothing     | the loop itself (poll(2))   |
//
// The receiving side (socket ──▶ stdout, OutputWriter) is the driver's
// own, the same in every mode, and so are the signals (the self-pipe), the
// chat screen's pipe, the teardown (Teardown.swift, whose actions the
// driver performs) and the release of everything, once, at the end.
// The alternate mode is not driven here: AlternateSession.swift says why.

/// How our sending side runs: the part that differs between the modes.
protocol SendingSide: AnyObject {
  /// Who receives in --trace lines (parent, main, poll).
  var receiverRole: Role { get }
  /// Starts sending (fork, a thread, or nothing); throws what could not
  /// be done, as the notice says it ("fork: Resource temporarily
  /// unavailable").
  func start(_ driver: SessionDriver) throws(Failure)
  /// Up to two descriptors the driver's poll(2) watches for it, with
  /// their events; nil turns a slot off.
  func watched(_ driver: SessionDriver) -> (first: (FileDescriptor, CInt)?, second: (FileDescriptor, CInt)?)
  /// One of its descriptors is ready: `first`, `second` say which.
  /// Throws if sending failed.
  func ready(_ driver: SessionDriver, first: Bool, second: Bool) throws(Failure)
  /// Once per turn of the loop, after the socket was read.
  func afterTurn(_ driver: SessionDriver) throws(Failure)
  /// SIGCHLD came.
  func childEnded(_ driver: SessionDriver)
  /// Stops the sending side if it still runs; reports `senderStopped`.
  func stop(_ driver: SessionDriver)
  /// The chat screen was drawn again (SIGWINCH, `fg`): the input line too.
  func redrawInput(_ driver: SessionDriver)
  /// Closes what it owns, once, at the end.
  func release()
  /// Whether all it tells the loop comes as a signal (fork mode: SIGCHLD),
  /// so that the loop may stay in a splice(2) while bulk data flows.
  var speaksOnlyBySignals: Bool { get }
}

extension SendingSide {
  var speaksOnlyBySignals: Bool { false }
  func afterTurn(_ driver: SessionDriver) throws(Failure) {}
  func childEnded(_ driver: SessionDriver) {}
  func release() {}
}

/// Runs one session: our sending side as `sender` says, our receiving
/// side in the one poll(2) loop, until `Teardown` says the chat is over.
final class SessionDriver {
  let session: Session
  let signals: SignalPipe
  let sender: any SendingSide
  var teardown: Teardown

  init(session: Session, signals: SignalPipe, sender: any SendingSide) {
    self.session = session
    self.signals = signals
    self.sender = sender
    self.teardown = session.makeTeardown()
  }

  var role: Role { sender.receiverRole }

  /// Starts the sending side, receives until the chat is over, and gives
  /// everything back: the sending side stopped, the socket closed, the
  /// terminal restored, the signal handlers uninstalled (a stop request
  /// that came meanwhile then ends the process as it asked).
  func run() -> SessionResult {
    do {
      try sender.start(self)
    } catch {
      notice(error.description)
      sender.release()
      _ = signals.uninstall()
      session.socket.closeIgnoringErrors()
      session.endTerminal()
      return .failed
    }
    let result = receive()
    sender.stop(self)
    release()
    signals.finish(role: role)
    return result
  }

  private func release() {
    sender.release()
    session.socket.closeIgnoringErrors()
    session.endTerminal()
  }

  enum Slot: Int, CaseIterable { case signals, socket, screen, sender, senderMore }

  /// The loop: runs until the peer has closed and our sending side is done
  /// (or the linger time has passed, or something failed).
  func receive() -> SessionResult {
    let output = OutputWriter(session: session)
    var poll = PollSet<Slot>()
    while !teardown.isOver {
      let watched = sender.watched(self)
      poll.watch(.signals, signals.readEnd)
      poll.watch(.socket, teardown.isReceiving ? session.socket : nil)
      poll.watch(.screen, session.screen?.fromInputToWatch)
      poll.watch(.sender, watched.first?.0, for: watched.first?.1 ?? 0)
      poll.watch(.senderMore, watched.second?.0, for: watched.second?.1 ?? 0)
      do throws(Failure) {
        guard try poll.wait(timeout: Clock.pollTimeout(until: teardown.lingerDeadline)) else {
          apply(.lingerEnded(now: Clock.now))
          continue
        }
        if poll.isReady(.signals) { handleSignals() }
        // The chat screen: what the sending side sent, drawn before any reply.
        if poll.isReady(.screen) { session.screen?.receiveFromInput() }
        if poll.isReady(.sender) || poll.isReady(.senderMore) {
          let (first, second) = (poll.isReady(.sender), poll.isReady(.senderMore))
          // A failure ends the turn: the chat is over, said once.
          guard sending({ () throws(Failure) in try sender.ready(self, first: first, second: second) }) else {
            continue
          }
        }
        if teardown.isReceiving, poll.isReady(.socket) {
          // A copy that reads the end of file: the peer has closed.
          // Bulk data may stay in the copy while only a signal could need
          // this loop (and none came, and no linger time runs).
          let staying = { [self] in
            sender.speaksOnlyBySignals && !signals.arrived && teardown.waitsOnlyForThePeer
          }
          if try output.copyOnce(onInterrupt: handleSignals, staying: staying) == 0 {
            apply(session.socketEnded(teardown))
          }
        }
        if !teardown.isOver { _ = sending { () throws(Failure) in try sender.afterTurn(self) } }
      } catch {
        notice(error.description)
        apply(.receivingFailed)
        sender.stop(self)
      }
    }
    return teardown.result
  }

  /// Runs a step of the sending side: its failure is the sending side's.
  /// Returns false if it failed.
  private func sending(_ step: () throws(Failure) -> Void) -> Bool {
    do {
      try step()
      return true
    } catch {
      notice(error.description)
      apply(.sendingFailed)
      return false
    }
  }

  /// Acts on the signals waiting in the self-pipe. A stop request (SIGINT,
  /// SIGTERM, SIGHUP) ends the process here, once the sending side is
  /// stopped.
  func handleSignals() {
    let (stop, childEnded, screenSignals) = signals.receiveAll(role: role)
    if let stop {
      sender.stop(self)
      release()
      signals.die(of: stop, role: role)
    }
    for signal in screenSignals { session.screen?.handle(signal) { sender.redrawInput(self) } }
    if childEnded { sender.childEnded(self) }
  }

  /// One teardown event; the actions it calls for, performed.
  func apply(_ event: Teardown.Event) {
    session.perform(teardown.handle(event), role: role) { sender.stop(self) }
  }
}
