import Glibc

// The fork session: the whole process-per-direction protocol, top to bottom.
//
//                          fork()
//         parent ─────────────┴───────────── child
//     socket ──▶ stdout                  stdin ──▶ socket, then FIN
//     (SessionDriver.receive)            (the `pid == 0` branch below)
//
// After fork() each process owns one direction and gives up what it does
// not own: the child reads stdin and writes the socket; the parent reads
// the socket and writes stdout, never reads stdin and never writes the
// socket (it may shut it down). With the chat screen the child also draws
// its input line and hands each line it sends to the parent through a
// pipe; the parent draws the conversation (Screen/Screen.swift).
//
// Stevens' str_cli (UNP, strclifork.c) has the roles the other way round:
// its child receives, its parent sends, then pause()s until the child
// kills it with SIGTERM. forkchat's parent receives because it is the
// process the shell waits for: it must end last and know how the chat
// ended. The receiving side sees the peer's end (end of file on the
// socket); the sending side's end is one event, which SIGCHLD and
// waitpid(2) bring to the parent with an exit status that says how it
// went (ChildExit), so the parent exits with a status that means something.

/// The fork mode's sending side: a child process.
final class ForkSender: SendingSide {
  var child: pid_t = 0
  var receiverRole: Role { .parent }

  func start(_ driver: SessionDriver) throws(Failure) {
    let session = driver.session
    // The child does not own stdout (nor a listening socket of --keep, nor
    // the parent's end of the screen); with the chat screen it draws its
    // input line on stdout.
    let closing = session.closeInChild + session.parentOnly + (session.screen == nil ? [.standardOutput] : [])
    let pid = try orFailure("fork") { () throws(Errno) in
      try forkChild(
        signals: driver.signals, parentRole: .parent, closing: closing, restoring: session.terminal)
    }
    if pid == 0 {
      // The child: standard input to the socket, then FIN.
      Trace.event(.child, "start", "sends stdin to the socket")
      var status = ChildExit.done
      do throws(Failure) {
        let sender = InputSender(session: session, role: .child)
        // The half-close: shutdown(SHUT_WR), not close(2), which would
        // send no FIN while the parent still holds the socket.
        if try sender.copyInput() == .inputEnded { try session.sendFIN(role: .child) }
      } catch {
        // A vanished peer is reported by the parent, once (Teardown).
        status = error.peerVanished ? .peerVanished : .failed
        if !error.peerVanished { notice(error.description) }
      }
      Trace.event(.child, "exit", "\(status.rawValue)")
      status.exit()  // _exit(2), not exit(3): the C library's exit handlers and buffers are the parent's
    }
    // The parent: the socket to standard output, in the driver's loop.
    child = pid
    if session.options.parentClosesInput { FileDescriptor.standardInput.closeOrReplaceStandard() }
    session.screen?.closeInputEnd()
  }

  /// The child's end comes as SIGCHLD, not as a descriptor.
  func watched(_ driver: SessionDriver) -> (first: (FileDescriptor, CInt)?, second: (FileDescriptor, CInt)?) {
    (nil, nil)
  }

  func ready(_ driver: SessionDriver, first: Bool, second: Bool) {}

  /// The child's end is SIGCHLD; the child needs nothing else of the loop.
  var speaksOnlyBySignals: Bool { true }

  /// SIGCHLD: collects the child if it has ended, and tells the teardown
  /// how it ended.
  func childEnded(_ driver: SessionDriver) {
    guard driver.teardown.isSending else { return }
    let status: WaitStatus?
    do {
      status = try waitForChild(child, noHang: true)
    } catch {
      notice("waitpid: \(error)")
      return driver.apply(.sendingFailed)
    }
    guard let status else { return }  // a SIGCHLD for a child still running
    Trace.event(.parent, "waitpid", "\(child) \(status.traceDescription)")
    switch (status, status.childExit) {
    case (_, .done):
      // Our input ended and all of it was sent: wait for the peer's end.
      driver.apply(.inputEnded(now: Clock.now))
    case (_, .peerVanished):
      // The kernel gave up on the peer while the child sent: said once.
      driver.apply(driver.session.peerVanished(driver.teardown, what: "write to"))
      driver.apply(.sendingFailed)
    case (.exited, _):
      // The child could not send (it said why): the chat is broken.
      driver.apply(.sendingFailed)
    case (.signaled(let signal), _):
      // The child was killed: FIN tells the peer nothing more will come.
      driver.apply(.senderKilled(who: "sending process \(child)", signal: signal))
    }
  }

  /// Stops the child, if it still runs: SIGTERM, then SIGKILL if it has
  /// not ended within `stopGrace`; reaps it.
  func stop(_ driver: SessionDriver) {
    guard driver.teardown.isSending else { return }
    stopAndReap([child], role: .parent, signals: driver.signals)
    driver.apply(.senderStopped)
  }

  /// The child hears SIGWINCH and SIGCONT itself and draws its own line.
  func redrawInput(_ driver: SessionDriver) {}
}
