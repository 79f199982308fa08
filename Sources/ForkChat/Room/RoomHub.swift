import Glibc

// The hub: the room's main process, and the only one that writes to the
// clients. One loop:
//
//   poll([signals, room pipe, listening socket, client sockets that are full])
//     ├─ room pipe readable → its records, one at a time, in pipe order:
//     │    a line → appended to the log once, for everyone but its sender
//     │    a command (/nick, /who ...) → acted on (RoomCommands.swift)
//     ├─ listening socket → accept; the socket goes to the spawner
//     ├─ a full socket became writable → it may take more
//     ├─ every client with lines waiting in the log → sendmsg, without
//     │    waiting, of the stretch between its cursor and the log's end
//     ├─ a client that took nothing for the stall time → dropped
//     └─ SIGCHLD → the spawner ended: the room cannot go on
//
// Lines enter the log in the order the hub handles records, and every
// client receives the log in that order: one order for all, each line
// whole (docs/room.md argues it). The hub never waits for a client.

final class RoomHub {
  let listener: Listener
  let signals: SignalPipe
  /// The room pipe's read end: every reader (and the spawner) writes its
  /// records into the pipe; the hub reads them in the one order the kernel
  /// put them in.
  let inbox: FileDescriptor
  /// The hub's end of the socket pair to the spawner.
  let control: FileDescriptor
  let spawner: pid_t
  let options: RoomOptions

  var log: RoomLog
  var members = Members()
  var nextId = 1
  /// A client's socket was closed this turn: forget it at the end.
  var someoneClosed = false
  /// Bytes read from the room pipe after the last complete record.
  var carry: [UInt8] = []
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
  /// The stretches of the log one sendmsg hands a client.
  let pieces = UnsafeMutableBufferPointer<iovec>.allocate(capacity: 64)
  /// accept(2) ran out of descriptors: the listening socket rests until then.
  var acceptPausedUntil: Double? = nil

  /// MSG_DONTWAIT makes one send non-blocking. Setting O_NONBLOCK with
  /// fcntl instead would change the open file description, which the hub
  /// shares with the client's reader process: the reader's read(2) would
  /// stop waiting too. MSG_NOSIGNAL: a closed peer gives EPIPE, not SIGPIPE.
  static let withoutWaiting = CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL)
  /// Bytes offered to a client's socket in one call: more than it takes.
  static let sendBytes = 256 * 1024

  /// The slots of the poll set, as netcat.c names its own.
  enum Slot {
    static let signals = 0
    static let inbox = 1
    static let listener = 2
    static let clients = 3  // and on: the sockets waiting for POLLOUT
  }

  init(
    listener: Listener, signals: SignalPipe, inbox: FileDescriptor, control: FileDescriptor,
    spawner: pid_t, options: RoomOptions
  ) {
    self.listener = listener
    self.signals = signals
    self.inbox = inbox
    self.control = control
    self.spawner = spawner
    self.options = options
    self.log = RoomLog(bytes: options.logMiB << 20)
  }

  // MARK: The loop

  func run() -> Never {
    while true {
      let now = Clock.now
      if let until = acceptPausedUntil, until <= now { acceptPausedUntil = nil }
      var waiting = [
        pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: inbox.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(
          fd: acceptPausedUntil == nil ? listener.socket.rawValue : -1, events: Int16(POLLIN), revents: 0),
      ]
      var full: [Member] = []
      var deadline = acceptPausedUntil ?? .infinity
      for member in members.all where member.socketOpen {
        if member.socketFull {
          waiting.append(pollfd(fd: member.socket.rawValue, events: Int16(POLLOUT), revents: 0))
          full.append(member)
        }
        if let since = member.waitingSince { deadline = min(deadline, since + Double(options.stallSeconds)) }
        if case .leaving(_, let closeBy) = member.state { deadline = min(deadline, closeBy) }
      }
      let timeout = deadline.isFinite ? CInt(max(0, min(60_000, (deadline - now) * 1000 + 1))) : -1
      do {
        _ = try poll(&waiting, timeout: timeout)
      } catch {
        notice("poll: \(error)")
        stop(nil)
      }
      if waiting[Slot.signals].revents != 0 { handleSignals() }
      if waiting[Slot.inbox].revents != 0 { readInbox() }
      if waiting[Slot.listener].revents != 0 { acceptClients() }
      for (index, member) in full.enumerated() where waiting[Slot.clients + index].revents != 0 {
        member.socketFull = false
      }
      sendAll()
      dropStalled()
      closeExpired()
      trimLog()
      if someoneClosed {
        members.removeClosed()
        someoneClosed = false
      }
    }
  }

  // MARK: Joining

  /// Accepts the clients waiting in the backlog (a few at a time, so the
  /// room's lines keep flowing during a rush of joins).
  func acceptClients() {
    for _ in 0..<32 {
      let socket: FileDescriptor
      let peer: SocketAddress
      do {
        (socket, peer) = try listener.socket.accept()
      } catch .wouldBlock {
        return
      } catch let error where error.rawValue == EMFILE || error.rawValue == ENFILE {
        notice("accept on \(listener.address): \(error); pausing for 100 ms")
        acceptPausedUntil = Clock.now + 0.1
        return
      } catch let error where error.rawValue == ECONNABORTED {
        continue
      } catch {
        notice("accept on \(listener.address): \(error)")
        return
      }
      Trace.event(.room, "accept", "fd=\(socket.rawValue) \(peer)")
      let loopback = peer.host == "127.0.0.1" || peer.host == "::1" || peer.host.hasPrefix("127.")
      if let most = options.maxPerHost ?? (loopback ? nil : RoomLimits.defaultMaxPerHost),
        members.placesTaken(from: peer) >= most
      {
        refuse(socket, peer, "too many connections from \(peer.host) (\(most)); try again later")
        continue
      }
      if members.placesTaken >= options.maxClients {
        // A connection that has said nothing for a while gives its place:
        // idle sockets cannot keep a class out, and nobody loses a place
        // while there are free ones.
        let silence = options.silentSeconds
        guard let silent = members.longestSilent(atLeast: Double(silence), now: Clock.now) else {
          refuse(socket, peer, "the room is full (\(options.maxClients) clients); try again later")
          continue
        }
        notice("\(silent.name) (\(silent.peer)) dropped: said nothing in \(silence) s, and the room was full")
        leave(silent, .silent(seconds: silence))
      }
      join(socket, peer)
    }
  }

  /// Tells a client why it cannot come in (if its socket takes the line
  /// now), and closes.
  func refuse(_ socket: FileDescriptor, _ peer: SocketAddress, _ why: String) {
    notice("refused \(peer): \(why)")
    _ = Array("* \(why)\n".utf8).withUnsafeBytes { try? socket.send($0, flags: Self.withoutWaiting) }
    try? socket.shutdown(CInt(SHUT_WR))
    socket.closeIgnoringErrors()
    Trace.event(.room, "close", "fd=\(socket.rawValue) \(why)")
  }

  /// Hands the client's socket to the spawner, which forks its reader
  /// process, and welcomes the client.
  func join(_ socket: FileDescriptor, _ peer: SocketAddress) {
    let id = nextId
    // Small lines go out at once (no Nagle delay, tcp(7)); a small send
    // buffer, so that the kernel holds little for a client that stops reading.
    try? socket.setOption(CInt(IPPROTO_TCP), TCP_NODELAY, 1)
    try? socket.setOption(SOL_SOCKET, SO_SNDBUF, CInt(RoomLimits.socketBufferBytes))
    // A client that vanishes without a word (lid closed, Wi-Fi gone) would
    // otherwise hold its name, its reader and its place for ever while the
    // room is quiet (no timer runs on an idle TCP connection), or ~15 min
    // while lines go to it. The error (ETIMEDOUT) ends its reader's read(2).
    do {
      try socket.detectDeadPeer(after: options.deadPeerSeconds)
    } catch {
      notice("\(error) for \(peer)")
    }
    do {
      // The spawner gets a descriptor of its own for the socket; the hub
      // keeps this one, to write to the client.
      try control.send(String(id), with: socket)
    } catch {
      notice("sendmsg to the spawner: \(error)")
      refuse(socket, peer, "the server cannot take more clients now")
      return
    }
    nextId += 1
    Trace.event(.room, "sendmsg", "client=\(id) fd=\(socket.rawValue) to the spawner")
    // Welcomed once its reader runs (its "start" record), not before.
    members.add(Member(id: id, socket: socket, peer: peer, cursor: log.end))
  }

  /// Its reader runs: the client is in the room.
  func welcome(_ member: Member) {
    member.state = .present
    member.cursor = log.end
    notice("\(member.name) joined from \(member.peer)")
    let others = members.presentCount - 1
    reply(
      "* welcome to the room, \(member.name)! \(others == 1 ? "1 other" : "\(others) others") here."
        + " /help lists the commands.\n", to: member)
    broadcast("* \(member.name) joined\n", from: member)
  }

  /// Its reader could not be forked (or died before it started): the
  /// client is told why, on its connection, and closed; nobody else heard
  /// of it.
  func turnAway(_ member: Member, _ how: String) {
    let why = "the room cannot take more clients now; try again later"
    notice("refused \(member.peer): its reader process \(how)")
    _ = Array("* \(why)\n".utf8).withUnsafeBytes { try? member.socket.send($0, flags: Self.withoutWaiting) }
    closeSocket(member, reset: false)
  }

  // MARK: The room pipe

  /// Reads what the room pipe holds (one read) and acts on every complete
  /// record, in order.
  func readInbox() {
    let count: Int
    do {
      count = try inbox.read(into: buffer)
    } catch .wouldBlock {
      return
    } catch {
      notice("read from the room pipe: \(error)")
      stop(nil)
    }
    if count == 0 {
      // No writer is left: the spawner has exited (it holds a write end
      // until then), and every reader with it.
      spawnerEnded()
    }
    let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
    var start = 0
    // A record straddles two reads only if the pipe held more than the
    // buffer; then its start waits in `carry`.
    if !carry.isEmpty {
      guard let end = bytes.firstIndex(of: 10) else {
        carry += bytes
        return
      }
      let record = carry + bytes[..<end]
      carry = []
      handle(record[...])
      start = end + 1
    }
    while start < count {
      guard let end = bytes[start...].firstIndex(of: 10) else {
        carry = Array(bytes[start...])
        break
      }
      handle(Array(bytes[start..<end])[...])
      start = end + 1
    }
  }

  func handle(_ bytes: ArraySlice<UInt8>) {
    guard let record = RoomRecord(bytes) else {
      notice("room pipe: unreadable record")
      return
    }
    if let member = members[record.client], member.isJoining {
      switch record {
      case .start: welcome(member)
      case .gone(_, let how):
        Trace.event(.room, "gone", "client=\(member.id) \(how)")
        turnAway(member, how)
      default: notice("room pipe: a record of client \(member.id) before its start")
      }
      return
    }
    // Records of a client who has left (its reader is being stopped) are
    // dropped: nothing it sends after its leave notice reaches anyone.
    guard let member = members[record.client], member.isPresent else {
      if case .gone(let client, let how) = record { Trace.event(.room, "gone", "client=\(client) \(how)") }
      return
    }
    switch record {
    case .say(_, let line):
      member.spoke = true
      if line.cut { reply(RoomLimits.cutNotice, to: member) }
      handleLine(line.text, from: member)
      Trace.event(.room, "line", "client=\(member.id) bytes=\(line.text.count)")
    case .start: break  // once only, while joining
    case .slow:
      reply(
        "* slow down: past \(options.floodBurst / 1024) KiB at once, the room takes"
          + " \(RoomLimits.floodRate / 1024) KiB/s from you\n", to: member)
    case .telnet(_, let answer):
      append(answer.bytes, for: .only(member.id))
      Trace.event(.room, "telnet", "client=\(member.id) \(answer.verb.rawValue) \(answer.option)")
    case .bye(_, let reason):
      member.readerDone = true
      switch reason {
      case "eof": leave(member, .closed)
      case "reset": leave(member, .reset)
      case "timeout": leave(member, .vanished(.timedOut))
      case "unreachable": leave(member, .vanished(.unreachable))
      default: leave(member, .error(reason))
      }
    case .gone(_, let how):
      // Its reader ended without a bye: killed from outside, or it could
      // not even be forked.
      member.readerDone = true
      Trace.event(.room, "gone", "client=\(member.id) \(how)")
      leave(member, .died(how))
    }
  }

  // MARK: Signals and the end

  func handleSignals() {
    let (stop, childEnded) = signals.receive(role: .room)
    if let stop { self.stop(stop) }
    // The hub's only child is the spawner (the readers are its children).
    if childEnded, let status = try? waitForChild(spawner, noHang: true) { spawnerEnded(status) }
  }

  /// The spawner has ended (SIGCHLD, or end of file on the room pipe):
  /// no client can join, and its readers died with it (PR_SET_PDEATHSIG).
  func spawnerEnded(_ reaped: WaitStatus? = nil) -> Never {
    let status = reaped ?? (try? waitForChild(spawner)) ?? nil
    let how = status.map { "\($0)" } ?? "ended"
    Trace.event(.room, "waitpid", "\(spawner) \(status?.traceDescription ?? "?")")
    notice("the spawner process \(spawner) \(how): the room cannot go on")
    stop(nil, spawnerReaped: true)
  }

  /// Ends the room: tells every client (whose socket takes it now),
  /// closes every socket, has the spawner stop and reap every reader,
  /// reaps the spawner, then dies of `signal` (or exits 1 after a failure,
  /// `signal` nil).
  func stop(_ signal: CInt?, spawnerReaped: Bool = false) -> Never {
    if let signal { notice("closing the room (\(signalName(signal)))") }
    broadcast("* the room is closing\n")
    for member in members.all where member.isPresent && !member.outputBroken { send(member, from: log) }
    for member in members.all where member.socketOpen {
      try? member.socket.shutdown(CInt(SHUT_WR))
      member.socket.closeIgnoringErrors()
      member.state = .closed
    }
    if !spawnerReaped { stopAndReap([spawner], role: .room) }
    listener.socket.closeIgnoringErrors()
    inbox.closeIgnoringErrors()
    control.closeIgnoringErrors()
    if let signal { signals.die(of: signal, role: .room) }
    signals.finish(role: .room)
    Trace.event(.room, "exit", "\(ExitStatus.failure)")
    exit(ExitStatus.failure)
  }
}
