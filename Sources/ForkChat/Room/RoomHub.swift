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
        _ = try waitForEvents(&waiting, timeout: timeout)
      } catch {
        notice(error.description)
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
      Trace.event("room", "accept", "fd=\(socket.rawValue) \(peer)")
      if members.presentCount >= options.maxClients {
        refuse(socket, peer, "the room is full (\(options.maxClients) clients); try again later")
        continue
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
    Trace.event("room", "close", "fd=\(socket.rawValue) \(why)")
  }

  /// Hands the client's socket to the spawner, which forks its reader
  /// process, and welcomes the client.
  func join(_ socket: FileDescriptor, _ peer: SocketAddress) {
    let id = nextId
    // Small lines go out at once (no Nagle delay, tcp(7)); a small send
    // buffer, so that the kernel holds little for a client that stops reading.
    try? socket.setOption(CInt(IPPROTO_TCP), TCP_NODELAY, 1)
    try? socket.setOption(SOL_SOCKET, SO_SNDBUF, CInt(RoomLimits.socketBufferBytes))
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
    Trace.event("room", "sendmsg", "client=\(id) fd=\(socket.rawValue) to the spawner")
    let member = Member(id: id, socket: socket, peer: peer, cursor: log.end)
    members.add(member)
    notice("\(member.name) joined from \(peer)")
    let others = members.presentCount - 1
    reply(
      "* welcome to the room, \(member.name)! \(others == 1 ? "1 other" : "\(others) others") here."
        + " /help lists the commands.\n", to: member)
    broadcast("* \(member.name) joined\n", from: member)
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
    // Records of a client who has left (its reader is being stopped) are
    // dropped: nothing it sends after its leave notice reaches anyone.
    guard let member = members[record.client], member.isPresent else {
      if case .gone(let client, let how) = record { Trace.event("room", "gone", "client=\(client) \(how)") }
      return
    }
    switch record {
    case .say(_, let line):
      if line.cut { reply(RoomLimits.cutNotice, to: member) }
      handleLine(line.text, from: member)
      Trace.event("room", "line", "client=\(member.id) bytes=\(line.text.count)")
    case .slow:
      reply(
        "* slow down: past \(options.floodBurst / 1024) KiB at once, the room takes"
          + " \(RoomLimits.floodRate / 1024) KiB/s from you\n", to: member)
    case .telnet(_, let answer):
      append(answer.bytes, for: .only(member.id))
      Trace.event("room", "telnet", "client=\(member.id) \(answer.verb.rawValue) \(answer.option)")
    case .bye(_, let reason):
      member.readerDone = true
      switch reason {
      case "eof": leave(member, .closed)
      case "reset": leave(member, .reset)
      default: leave(member, .error(reason))
      }
    case .gone(_, let how):
      // Its reader ended without a bye: killed from outside, or it could
      // not even be forked.
      member.readerDone = true
      Trace.event("room", "gone", "client=\(member.id) \(how)")
      leave(member, .died(how))
    }
  }

  // MARK: The log

  /// A line for everyone, or for everyone but its sender.
  func broadcast(_ text: String, from sender: Member? = nil) {
    broadcast(Array(text.utf8), from: sender)
  }

  func broadcast(_ line: [UInt8], from sender: Member? = nil) {
    append(line, for: sender.map { .everyoneBut($0.id) } ?? .everyone)
  }

  /// A line for `member` alone.
  func reply(_ text: String, to member: Member) {
    append(Array(text.utf8), for: .only(member.id))
  }

  /// Appends to the log; if that pushed its oldest block out, every client
  /// whose cursor was in it is a whole log behind, and is dropped.
  func append(_ bytes: [UInt8], for audience: Audience) {
    guard log.append(bytes, for: audience) else { return }
    for member in members.all where member.socketOpen && member.cursor < log.start {
      if member.isPresent {
        notice("\(member.name) (\(member.peer)) dropped: a whole log (\(options.logMiB) MiB) behind")
        leave(member, .behind(logMiB: options.logMiB))
      } else {
        closeSocket(member, reset: true)
      }
    }
  }

  /// Frees the log's blocks that every client has received.
  func trimLog() {
    var oldest = log.end
    for member in members.all where member.socketOpen { oldest = min(oldest, member.cursor) }
    log.trim(before: oldest)
  }

  // MARK: Sending

  /// Sends every client whose socket is not full what the log holds for it.
  func sendAll() {
    let start = Trace.isOn ? Clock.now : 0
    let log = self.log  // read-only here: a copy shares the blocks, and spares an access check per call
    var clients = 0
    for member in members.all where member.socketOpen && !member.socketFull && !member.outputBroken {
      if send(member, from: log) { clients += 1 }
    }
    if Trace.isOn && clients > 0 {
      Trace.event("room", "fanout", "clients=\(clients) in \(Int((Clock.now - start) * 1e6)) us")
    }
  }

  /// Hands `member`'s socket the log's lines for it, from its cursor on,
  /// until the socket is full or the client has everything (then a
  /// leaving client is closed). Returns whether anything was sent.
  @discardableResult
  func send(_ member: Member, from log: RoomLog) -> Bool {
    var sentSome = false
    var cursor = member.cursor
    defer { member.cursor = cursor }
    _ = log.skip(&cursor, for: member.id)
    while log.hasLines(after: cursor, before: member.logLimit) {
      var count = 0
      var offered = 0
      log.forEachStretch(for: member.id, from: cursor, before: member.logLimit, maxBytes: Self.sendBytes) {
        pieces[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
        count += 1
        offered += $0.count
        return count < pieces.count
      }
      let sent: Int
      do {
        // One stretch (the usual case: a line or two): send(2) is the cheaper call.
        sent =
          count == 1
          ? try member.socket.send(
            UnsafeRawBufferPointer(start: pieces[0].iov_base, count: offered), flags: Self.withoutWaiting)
          : try member.socket.sendMessage(pieces, count: count, flags: Self.withoutWaiting)
      } catch .wouldBlock {
        sent = 0
      } catch {
        outputFailed(member, error)
        return sentSome
      }
      if sent > 0 {
        log.advance(&cursor, by: sent, for: member.id)
        member.waitingSince = nil
        sentSome = true
      }
      if sent < offered {
        member.socketFull = true
        member.waitingSince = member.waitingSince ?? Clock.now
        return sentSome
      }
    }
    member.waitingSince = nil
    if case .leaving = member.state { closeSocket(member, reset: false) }
    return sentSome
  }

  /// A send failed: the client is gone (EPIPE, ECONNRESET). Its reader
  /// sees the same on its side and says bye; until then nothing is sent.
  func outputFailed(_ member: Member, _ error: Errno) {
    Trace.event("room", "send", "client=\(member.id) failed: \(error)")
    member.outputBroken = true
    member.waitingSince = nil
    if case .leaving = member.state { closeSocket(member, reset: true) }
  }

  // MARK: Leaving

  /// Drops the clients that have taken nothing for the stall time while
  /// lines waited for them.
  func dropStalled() {
    let now = Clock.now
    let stall = options.stallSeconds
    for member in members.all where member.isPresent {
      guard let since = member.waitingSince, now - since >= Double(stall) else { continue }
      notice("\(member.name) (\(member.peer)) dropped: took nothing for \(stall) s")
      leave(member, .stalled(seconds: stall))
    }
  }

  /// Takes `member` out of the room: everyone is told, its reader is made
  /// to end if it still runs, and its socket is closed (at once, or once
  /// it has what the log holds for it, for a clean ending).
  func leave(_ member: Member, _ how: Leaving) {
    guard member.isPresent else { return }
    member.state = .leaving(until: log.end, deadline: Clock.now + RoomLimits.closeWait)
    Trace.event("room", "leave", "client=\(member.id) \(member.name)\(how.suffix)")
    switch how {
    case .stalled, .behind: break  // the drop notice said it
    default: notice("\(member.name) left\(how.suffix)")
    }
    broadcast("* \(member.name) left\(how.suffix)\n")
    if !member.readerDone {
      // The spawner stops the reader: the hub cannot kill it by pid, as
      // only the spawner, its parent, knows when that pid stops being the
      // reader's. Should the message not go, shutdown(SHUT_RD), which acts
      // on the socket for every process holding it, ends the reader's
      // next read(2) with end of file.
      do {
        _ = try Array("stop \(member.id)".utf8).withUnsafeBytes { bytes in
          Result { () throws(Errno) in try control.send(bytes, flags: Self.withoutWaiting) }
        }.get()
        Trace.event("room", "send", "stop \(member.id) to the spawner")
      } catch {
        try? member.socket.shutdown(CInt(SHUT_RD))
        Trace.event("room", "shutdown", "client=\(member.id) SHUT_RD")
      }
    }
    if !how.graceful || member.outputBroken { closeSocket(member, reset: !how.graceful) }
  }

  /// Closes the hub's descriptor of a client's socket. A clean close sends
  /// FIN now (shutdown: the reader may hold the socket a moment longer); a
  /// reset (SO_LINGER 0) drops whatever the kernel still holds for the
  /// client when the last descriptor goes.
  func closeSocket(_ member: Member, reset: Bool) {
    guard member.socketOpen else { return }
    if reset {
      try? member.socket.setResetOnClose()
    } else {
      try? member.socket.shutdown(CInt(SHUT_WR))
    }
    member.socket.closeIgnoringErrors()
    member.state = .closed
    member.waitingSince = nil
    someoneClosed = true
    Trace.event("room", "close", "fd=\(member.socket.rawValue) client=\(member.id)\(reset ? " reset" : "")")
  }

  /// Leaving clients that did not take their last lines in time.
  func closeExpired() {
    let now = Clock.now
    for member in members.all {
      if case .leaving(_, let deadline) = member.state, deadline <= now { closeSocket(member, reset: true) }
    }
  }

  // MARK: Signals and the end

  func handleSignals() {
    let (stop, childEnded) = signals.receive(role: "room")
    if let stop { self.stop(stop) }
    // The hub's only child is the spawner (the readers are its children).
    if childEnded, let status = try? waitForChild(spawner, noHang: true) { spawnerEnded(status) }
  }

  /// The spawner has ended (SIGCHLD, or end of file on the room pipe):
  /// no client can join, and its readers died with it (PR_SET_PDEATHSIG).
  func spawnerEnded(_ reaped: WaitStatus? = nil) -> Never {
    let status = reaped ?? (try? waitForChild(spawner)) ?? nil
    let how = status.map { "\($0)" } ?? "ended"
    Trace.event("room", "waitpid", "\(spawner) \(status?.traceDescription ?? "?")")
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
    if !spawnerReaped { stopAndReap([spawner], role: "room") }
    listener.socket.closeIgnoringErrors()
    inbox.closeIgnoringErrors()
    control.closeIgnoringErrors()
    if let signal { signals.die(of: signal, role: "room") }
    signals.finish(role: "room")
    Trace.event("room", "exit", "\(ExitStatus.failure)")
    exit(ExitStatus.failure)
  }
}
