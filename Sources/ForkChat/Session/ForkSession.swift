import Glibc

// The fork session: the whole process-per-direction protocol in one file.
//
//                       fork()
//       parent ───────────┴─────────── child
//   socket ──▶ stdout              stdin ──▶ socket
//   (ForkSession.receive)          (InputSender.run)
//
// Ownership after fork(): the child reads stdin and writes the socket, and
// nothing else; the parent reads the socket and writes stdout, never reads
// stdin and never writes the socket (it may shut it down). Each process
// closes the descriptors it does not own.
//
// Teardown: docs/design.md has one diagram per ending.

/// The fork mode: the child sends, the parent receives and decides, from
/// the child's wait status, the end of the socket and the signals received,
/// when the session is over.
final class ForkSession {
  let session: Session
  var teardown: Teardown
  var child: pid_t = 0
  var signals: SignalPipe! = nil

  init(session: Session) {
    self.session = session
    self.teardown = Teardown(session: session, role: "parent")
  }

  /// Forks, runs the parent's half here, and returns once both processes
  /// are done: the child reaped, the socket closed.
  func run() -> SessionResult {
    guard let signals = session.installSignals() else { return .failed }
    self.signals = signals
    // fork(): the child sends, and the parent goes on below to receive.
    do {
      child = try forkChild(
        signals: signals, role: "child", parentRole: "parent",
        closing: session.closeInChild + [.standardOutput]
      ) {
        Trace.event("child", "start", "sends stdin to the socket")
        do throws(Failure) {
          _ = try InputSender(session: session, role: "child").run()
          return 0
        } catch {
          // A vanished peer is reported by the parent, once (Teardown).
          guard !error.peerVanished else { return InputSender.peerVanishedStatus }
          notice(error.description)
          return 1
        }
      }
    } catch {
      notice("fork: \(error)")
      _ = signals.uninstall()
      session.socket.closeIgnoringErrors()
      return .failed
    }
    if session.options.parentClosesInput { FileDescriptor.standardInput.closeIgnoringErrors() }
    let result = receive()
    session.socket.closeIgnoringErrors()
    signals.finish(role: "parent")
    return result
  }

  /// The parent's loop: runs until the peer has closed and the child has
  /// been reaped (or the linger time has passed).
  func receive() -> SessionResult {
    let output = OutputWriter(session: session)
    while !teardown.isOver {
      var waiting = [
        pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: teardown.peerOpen ? session.socket.rawValue : -1, events: Int16(POLLIN), revents: 0),
      ]
      do throws(Failure) {
        let ready = try waitForEvents(&waiting, timeout: teardown.pollTimeout)
        if ready == 0 && teardown.lingerExpired() { break }
        if waiting[0].revents != 0 { handleSignals() }
        guard teardown.peerOpen, waiting[1].revents != 0 else { continue }
        if try output.copyOnce(onInterrupt: handleSignals) == 0 && teardown.peerClosed() {
          stopChild()
        }
      } catch {
        notice(error.description)
        stopChild()
        return .failed
      }
    }
    return teardown.result
  }

  /// Acts on the signals waiting in the self-pipe. A stop request (SIGINT,
  /// SIGTERM, SIGHUP) ends the process here, after the child is reaped.
  func handleSignals() {
    let (stop, childEnded) = signals.receive(role: "parent")
    if let stop {
      stopChild()
      session.socket.closeIgnoringErrors()
      signals.die(of: stop, role: "parent")
    }
    if childEnded { reapChild() }
  }

  /// Collects the child if it has ended (SIGCHLD) and applies the teardown
  /// contract to how it ended.
  func reapChild() {
    guard teardown.sending else { return }
    let status: WaitStatus?
    do {
      status = try waitForChild(child, noHang: true)
    } catch {
      notice("waitpid: \(error)")
      teardown.sendingFailed()
      return
    }
    guard let status else { return }  // a SIGCHLD for a child still running
    Trace.event("parent", "waitpid", "\(child) \(status.traceDescription)")
    switch status {
    case .exited(0):
      // Our input ended and all of it was sent: wait for the peer's end.
      teardown.inputEnded()
    case .exited(InputSender.peerVanishedStatus):
      // The kernel gave up on the peer while the child sent: said once.
      teardown.peerVanished("write to")
      teardown.sendingFailed()
    case .exited:
      // The child could not send (it said why): the chat is broken.
      teardown.sendingFailed()
    case .signaled(let signal):
      // The child was killed: tell the peer nothing more will come, and
      // keep printing what it still sends.
      notice("sending process \(child) killed by signal \(signal) (\(signalName(signal)))")
      teardown.sending = false
      teardown.failed = true
      try? session.socket.shutdown(CInt(SHUT_WR))
      Trace.event("parent", "shutdown", "SHUT_WR")
    }
  }

  /// Stops the child (if it is still running) and reaps it.
  func stopChild() {
    guard teardown.sending else { return }
    stopAndReap([child], role: "parent")
    teardown.sending = false
  }
}
