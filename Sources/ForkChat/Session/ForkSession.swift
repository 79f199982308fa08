import Glibc

// The fork session: the whole process-per-direction protocol, top to bottom.
//
//                          fork()
//         parent ─────────────┴───────────── child
//     socket ──▶ stdout                  stdin ──▶ socket
//     (receive, below)                   (InputSender, Copying.swift)
//
// After fork() each process owns one direction and closes what it does not
// own: the child reads stdin and writes the socket; the parent reads the
// socket and writes stdout, never reads stdin and never writes the socket
// (it may shut it down). With the chat screen
// (Screen/Screen.swift) the child also draws its input line on stdout and
// hands each line it sends to the parent through a pipe, and the parent
// draws the conversation: each process its own part of one terminal.
//
// Stevens' str_cli (UNP, strclifork.c) has the roles the other way round:
// its child receives, its parent sends, then pause()s until the child
// kills it with SIGTERM. forkchat's parent receives because the parent is
// the process the shell waits for, so it must be the last to end, and the
// one that knows how the chat ended:
// - the receiving side is the one that sees the peer's end (end of file on
//   the socket), and a chat is over only once the peer has closed;
// - the sending side's end is one event, which SIGCHLD and waitpid(2)
//   bring to the parent with an exit status that says how it went (all
//   sent, a write failed, killed by a signal);
// so the parent exits with a status that means something, instead of dying
// of the SIGTERM its child sends, as UNP's does.
//
// Each way a chat ends is a transition of `Teardown` (Teardown.swift);
// docs/design.md draws them one by one.

/// The fork mode: the child sends, the parent receives and decides when
/// the session is over.
final class ForkSession {
  let session: Session
  let signals: SignalPipe
  var teardown: Teardown
  var child: pid_t = 0

  init(session: Session, signals: SignalPipe) {
    self.session = session
    self.signals = signals
    self.teardown = session.makeTeardown()
  }

  /// Forks; the child sends and never returns, the parent receives and
  /// returns once both processes are done: the child reaped, the socket
  /// closed.
  func run() -> SessionResult {
    let pid: pid_t
    do {
      // The child does not own stdout (nor a listening socket of --keep, nor
      // the parent's end of the screen); with the chat screen it draws its
      // input line on stdout.
      pid = try forkChild(
        signals: signals, parentRole: .parent,
        closing: session.closeInChild + session.parentOnly + (session.screen == nil ? [.standardOutput] : []),
        restoring: session.terminal)
    } catch {
      notice("fork: \(error)")
      _ = signals.uninstall()
      session.socket.closeIgnoringErrors()
      session.endTerminal()
      return .failed
    }

    if pid == 0 {
      // The child: standard input to the socket, then FIN.
      Trace.event(.child, "start", "sends stdin to the socket")
      var status = ChildExit.done
      do throws(Failure) {
        _ = try InputSender(session: session, role: .child).run()
      } catch {
        // A vanished peer is reported by the parent, once (Teardown).
        status = error.peerVanished ? .peerVanished : .failed
        if !error.peerVanished { notice(error.description) }
      }
      Trace.event(.child, "exit", "\(status.rawValue)")
      status.exit()  // _exit(2), not exit(3): the C library's exit handlers and buffers are the parent's
    }

    // The parent: the socket to standard output, until the chat is over.
    child = pid
    if session.options.parentClosesInput { FileDescriptor.standardInput.closeOrReplaceStandard() }
    session.screen?.closeInputEnd()
    let result = receive()
    session.socket.closeIgnoringErrors()
    session.endTerminal()
    signals.finish(role: .parent)
    return result
  }

  enum Slot: Int, CaseIterable { case signals, socket, screen }

  /// The parent's loop: runs until the peer has closed and the child has
  /// been reaped (or the linger time has passed, or something failed).
  func receive() -> SessionResult {
    let output = OutputWriter(session: session)
    var poll = PollSet<Slot>()
    while !teardown.isOver {
      poll.watch(.signals, signals.readEnd)
      poll.watch(.socket, teardown.isReceiving ? session.socket : nil)
      poll.watch(.screen, session.screen?.fromInputToWatch)
      do throws(Failure) {
        guard try poll.wait(timeout: Clock.pollTimeout(until: teardown.lingerDeadline)) else {
          apply(.lingerEnded(now: Clock.now))
          continue
        }
        if poll.isReady(.signals) { handleSignals() }
        // The chat screen: what the child sent, drawn before any reply.
        if poll.isReady(.screen) { session.screen?.receiveFromInput() }
        guard teardown.isReceiving, poll.isReady(.socket) else { continue }
        // A copy that reads the end of file: the peer has closed.
        if try output.copyOnce(onInterrupt: handleSignals) == 0 { apply(session.socketEnded(teardown)) }
      } catch {
        notice(error.description)
        apply(.receivingFailed)
        stopChild()
      }
    }
    return teardown.result
  }

  /// Acts on the signals waiting in the self-pipe. A stop request (SIGINT,
  /// SIGTERM, SIGHUP) ends the process here, after the child is reaped.
  func handleSignals() {
    let (stop, childEnded, screenSignals) = signals.receiveAll(role: .parent)
    if let stop {
      stopChild()
      session.socket.closeIgnoringErrors()
      session.endTerminal()
      signals.die(of: stop, role: .parent)
    }
    // The child hears SIGWINCH and SIGCONT itself and draws its own line.
    for signal in screenSignals { session.screen?.handle(signal) {} }
    if childEnded { reapChild() }
  }

  /// SIGCHLD: collects the child if it has ended, and applies the teardown
  /// contract to how it ended.
  func reapChild() {
    guard teardown.isSending else { return }
    let status: WaitStatus?
    do {
      status = try waitForChild(child, noHang: true)
    } catch {
      notice("waitpid: \(error)")
      apply(.sendingFailed)
      return
    }
    guard let status else { return }  // a SIGCHLD for a child still running
    Trace.event(.parent, "waitpid", "\(child) \(status.traceDescription)")
    switch (status, status.childExit) {
    case (_, .done):
      // Our input ended and all of it was sent: wait for the peer's end.
      apply(.inputEnded(now: Clock.now))
    case (_, .peerVanished):
      // The kernel gave up on the peer while the child sent: said once.
      apply(session.peerVanished(teardown, what: "write to"))
      apply(.sendingFailed)
    case (.exited, _):
      // The child could not send (it said why): the chat is broken.
      apply(.sendingFailed)
    case (.signaled(let signal), _):
      // The child was killed: FIN tells the peer nothing more will come.
      apply(.senderKilled(who: "sending process \(child)", signal: signal))
    }
  }

  /// Stops the child (if it is still running) and reaps it.
  func stopChild() {
    guard teardown.isSending else { return }
    stopAndReap([child], role: .parent, signals: signals)
    apply(.senderStopped)
  }

  /// One teardown event; the actions it calls for, performed.
  func apply(_ event: Teardown.Event) {
    session.perform(teardown.handle(event), role: .parent, stopSender: stopChild)
  }
}
