import Glibc

// listen --echo: the course's ping-pong server. Every byte a client sends
// comes back to it unchanged (so every line is answered with itself).
//
// One client at a time by default. With --keep, the server forks one
// process per client, so that several clients can ping at once:
//
//   main: poll([listening socket, signals])
//     ├─ accept → fork ─ child: echo one client, _exit
//     └─ SIGCHLD → waitpid(-1, WNOHANG) until no child is left to reap
//
// Ctrl-C, SIGTERM or SIGHUP: every child is stopped and reaped, then the
// server dies of the signal.

/// Serves echo clients on `listener`. Returns the exit status.
func serveEcho(_ listener: Listener, options: Options, allowed: [SocketAddress]) -> CInt {
  guard options.keep else {
    guard let (socket, peer) = acceptAllowed(listener, options: options, allowed: allowed) else {
      return ExitStatus.failure
    }
    return echo(socket, peer: peer, role: .main, deadPeer: options.session.deadPeer)
      ? ExitStatus.success : ExitStatus.failure
  }
  let signals: SignalPipe
  do {
    signals = try SignalPipe.install()
  } catch {
    notice("pipe: \(error)")
    return ExitStatus.failure
  }
  var children: Set<pid_t> = []
  var poll = PollSet<EchoSlot>()
  poll.watch(.signals, signals.readEnd)
  poll.watch(.listener, listener.socket)
  while true {
    do {
      _ = try poll.wait(timeout: -1)
    } catch {
      notice(error.description)
      return ExitStatus.failure
    }
    if poll.isReady(.signals) {
      let (stop, childEnded) = signals.receive(role: .main)
      if let stop {
        stopAndReap(Array(children), role: .main, signals: signals)
        signals.die(of: stop, role: .main)
      }
      if childEnded {
        for (pid, _) in reapEndedChildren(role: .main) { children.remove(pid) }
      }
    }
    guard poll.isReady(.listener) else { continue }
    guard let (socket, peer) = acceptAllowed(listener, options: options, allowed: allowed) else {
      return ExitStatus.failure  // (reported; the children die with us: PR_SET_PDEATHSIG)
    }
    let pid: pid_t
    do {
      pid = try forkChild(signals: signals, parentRole: .main, closing: [listener.socket])
    } catch {
      notice("fork: \(error)")
      socket.closeIgnoringErrors()
      continue
    }
    if pid == 0 {
      // The child: this one client, then _exit.
      let served = echo(socket, peer: peer, role: .echo, deadPeer: options.session.deadPeer)
      let status: ChildExit = served ? .done : .failed
      Trace.event(.echo, "exit", "\(status.rawValue)")
      status.exit()
    }
    children.insert(pid)
    socket.closeIgnoringErrors()  // the child has it
  }
}

private enum EchoSlot: Int, CaseIterable { case signals, listener }

/// Sends back everything `socket` receives until the client's FIN, then
/// sends ours; a client that vanishes is noticed after `deadPeer` seconds.
/// Returns false after an error (reported).
func echo(_ socket: FileDescriptor, peer: SocketAddress, role: Role, deadPeer: Double) -> Bool {
  defer { socket.closeIgnoringErrors() }
  do throws(Failure) {
    try socket.detectDeadPeer(after: deadPeer)
    let buffer = try allocateMemory(Session.bufferSize, for: "the echo buffer")
    defer { freeMemory(buffer) }
    while true {
      let count = try orFailure("read from \(peer)") { () throws(Errno) in try socket.read(into: buffer) }
      if count == 0 { break }
      try orFailure("write to \(peer)") { () throws(Errno) in
        try socket.writeAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
      }
    }
    Trace.event(role, "eof", "socket")
    notice("\(peer) closed the connection")
    try? socket.shutdown(CInt(SHUT_WR))
    Trace.event(role, "shutdown", "SHUT_WR")
    return true
  } catch {
    notice(error.description)
    return false
  }
}
