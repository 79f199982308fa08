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
func serveEcho(_ listener: Listener, options: ListenOptions, allowed: [SocketAddress]) -> CInt {
  guard options.keep else {
    guard let (socket, peer) = acceptAllowed(listener, options: options, allowed: allowed) else {
      return ExitStatus.failure
    }
    listener.socket.closeIgnoringErrors()
    return echo(socket, peer: peer, role: "main", deadPeer: options.session.deadPeer)
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
  while true {
    var waiting = [
      pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
      pollfd(fd: listener.socket.rawValue, events: Int16(POLLIN), revents: 0),
    ]
    do {
      _ = try waitForEvents(&waiting, timeout: -1)
    } catch {
      notice(error.description)
      return ExitStatus.failure
    }
    if waiting[0].revents != 0 {
      let (stop, childEnded) = signals.receive(role: "main")
      if let stop {
        stopAndReap(Array(children), role: "main")
        signals.die(of: stop, role: "main")
      }
      if childEnded {
        for (pid, _) in reapEndedChildren(role: "main") { children.remove(pid) }
      }
    }
    guard waiting[1].revents != 0 else { continue }
    guard let (socket, peer) = acceptAllowed(listener, options: options, allowed: allowed) else {
      return ExitStatus.failure  // (reported; the children die with us: PR_SET_PDEATHSIG)
    }
    let pid: pid_t
    do {
      pid = try forkChild(signals: signals, role: "echo", parentRole: "main", closing: [listener.socket]) {
        echo(socket, peer: peer, role: "echo", deadPeer: options.session.deadPeer) ? 0 : 1
      }
    } catch {
      notice("fork: \(error)")
      socket.closeIgnoringErrors()
      continue
    }
    children.insert(pid)
    socket.closeIgnoringErrors()  // the child has it
  }
}

/// Sends back everything `socket` receives until the client's FIN, then
/// sends ours; a client that vanishes is noticed after `deadPeer` seconds.
/// Returns false after an error (reported).
func echo(_ socket: FileDescriptor, peer: SocketAddress, role: String, deadPeer: Double) -> Bool {
  defer { socket.closeIgnoringErrors() }
  do throws(Failure) {
    try socket.detectDeadPeer(after: deadPeer)
    let buffer = try allocateMemory(Session.bufferSize, for: "the echo buffer")
    defer { freeMemory(buffer) }
    while true {
      let count: Int
      do {
        count = try socket.read(into: buffer)
      } catch {
        throw Failure("read from \(peer)", error)
      }
      if count == 0 { break }
      do {
        try socket.writeAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
      } catch {
        throw Failure("write to \(peer)", error)
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
