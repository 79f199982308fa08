import Glibc

// forkchat room: a chat room, the Unix way. docs/room.md has the diagram
// and the argument; in short, three kinds of process:
//
//   hub (the main process): poll([signals, room pipe, listening socket,
//                                 client sockets with bytes queued])
//     ├─ accept → the client socket goes to the spawner (SCM_RIGHTS)
//     ├─ room pipe readable → one record at a time, in pipe order:
//     │    a line → "name: text\n" appended to every other client's queue
//     │    a command (/nick, /who, /me, /quit, /help) → acted on
//     ├─ client socket writable → more of its queue, send(MSG_DONTWAIT)
//     └─ SIGCHLD → the spawner ended: the room cannot go on
//   spawner (RoomSpawner.swift): forks one reader per client, reaps them
//   reader (RoomReader.swift): its client's socket ──▶ the room pipe
//
// The hub is the only process that writes to client sockets, and it
// handles one record at a time: that is why every client sees the lines in
// the same order, each line whole. It never waits for a client: a socket
// that does not take a line now gets it queued, and a client whose queue
// passes RoomLimits.queueBytes is dropped.

/// `forkchat room`: what the room itself takes (where it listens is in
/// `Options`).
public struct RoomOptions: Equatable, Sendable {
  public var maxClients = 1000
  public init() {}
}

/// Runs a chat room until a signal (SIGINT, SIGTERM, SIGHUP) ends it: then
/// every reader process is stopped and reaped, and the process dies of
/// that signal. Returns an exit status only if the room cannot start, or
/// fails (1).
public func runRoom(_ options: Options) -> CInt {
  // One descriptor per client in the hub, and a few of its own; the soft
  // limit is often 1024, the hard one far higher (getrlimit(2)).
  let reserve = 16
  let limit = raiseOpenFileLimit(to: UInt(options.room.maxClients + reserve))
  var maxClients = options.room.maxClients
  if limit < UInt(maxClients + reserve) {
    maxClients = max(1, Int(limit) - reserve)
    notice("at most \(maxClients) clients: the limit on open files is \(limit) (ulimit -n)")
  }
  let listener: Listener
  do throws(Failure) {
    listener = try Listener.open(port: options.port, bindAddress: options.bindAddress, family: .any)
  } catch {
    notice(error.description)
    return ExitStatus.failure
  }
  let inbox: FileDescriptor
  let outbox: FileDescriptor
  let control: FileDescriptor
  let spawnerEnd: FileDescriptor
  do throws(Failure) {
    do {
      (inbox, outbox) = try makePipe()
    } catch {
      throw Failure("pipe", error)
    }
    do {
      // Only the hub reads the pipe: non-blocking, so it can read what is
      // there and go back to poll. The write end stays blocking: a reader
      // waits while the pipe is full (back pressure), and a blocking write
      // of at most PIPE_BUF bytes is atomic.
      try inbox.setNonBlocking()
      try listener.socket.setNonBlocking()
    } catch {
      throw Failure("fcntl", error)
    }
    do {
      (control, spawnerEnd) = try makeMessageSocketPair()
    } catch {
      throw Failure("socketpair", error)
    }
  } catch {
    notice(error.description)
    return ExitStatus.failure
  }
  Trace.event(.room, "pipe", "read=\(inbox.rawValue) write=\(outbox.rawValue)")
  let signals: SignalPipe
  do {
    signals = try SignalPipe.install()
  } catch {
    notice("pipe: \(error)")
    return ExitStatus.failure
  }
  // The spawner, forked now, while the hub is small.
  let spawner: pid_t
  do {
    spawner = try forkChild(signals: signals, parentRole: .room, closing: [])
  } catch {
    notice("fork: \(error)")
    _ = signals.uninstall()
    return ExitStatus.failure
  }
  if spawner == 0 {
    // The spawner keeps its end of the socket pair, the pipe's write end
    // and stderr: not the listening socket, not the pipe's read end. It
    // ends with _exit (RoomSpawner.stop).
    closeDescriptors(except: [spawnerEnd.rawValue, outbox.rawValue])
    RoomSpawner(control: spawnerEnd, room: outbox, maxClients: maxClients).run()
  }
  // The hub never writes into the room pipe: once the spawner and every
  // reader are gone, the hub reads end of file there.
  outbox.closeIgnoringErrors()
  spawnerEnd.closeIgnoringErrors()
  notice("room open on \(listener.description), at most \(maxClients) clients")
  return RoomHub(
    listener: listener, signals: signals, inbox: inbox, control: control, spawner: spawner,
    maxClients: maxClients
  ).run()
}

/// One client, as the hub sees it.
final class Member {
  let id: Int
  let socket: FileDescriptor
  let peer: SocketAddress
  var name: String
  /// Bytes for this client not yet taken by its socket: `queue[sent...]`.
  var queue: [UInt8] = []
  var sent = 0
  var state = State.present
  /// The reader said bye, or the spawner reported its end.
  var readerDone = false
  /// A send failed (the client is gone): nothing more is sent to it.
  var outputBroken = false

  enum State: Equatable {
    /// In the room: gets every line.
    case present
    /// Has left; what is queued for it is still sent, until the deadline.
    case closing(deadline: Double)
    /// The hub's descriptor is closed: forgotten at the end of the loop.
    case closed
  }

  init(id: Int, socket: FileDescriptor, peer: SocketAddress) {
    self.id = id
    self.socket = socket
    self.peer = peer
    self.name = "guest-\(id)"
  }

  var pending: Int { queue.count - sent }
  var isPresent: Bool { state == .present }
  var socketOpen: Bool { state != .closed }
}

/// Why a client left, for the notice everyone gets.
enum Leaving {
  case closed, reset, error(String), quit, dropped, died(String)

  var suffix: String {
    switch self {
    case .closed, .quit: ""
    case .reset: " (connection reset)"
    case .error(let text): " (\(text))"
    case .dropped: " (dropped: not reading)"
    case .died(let how): " (its reader process \(how))"
    }
  }

  /// A clean ending: what is queued for the client is still worth sending.
  var graceful: Bool {
    switch self {
    case .closed, .quit: true
    default: false
    }
  }
}

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
  let maxClients: Int

  var members: [Member] = []
  var byId: [Int: Member] = [:]
  /// nameKey(name) → the present member who has it.
  var names: [String: Member] = [:]
  var present = 0
  var nextId = 1
  /// Bytes read from the room pipe after the last complete record.
  var carry: [UInt8] = []
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
  /// accept(2) ran out of descriptors: the listening socket rests until then.
  var acceptPausedUntil: Double? = nil

  init(
    listener: Listener, signals: SignalPipe, inbox: FileDescriptor, control: FileDescriptor,
    spawner: pid_t, maxClients: Int
  ) {
    self.listener = listener
    self.signals = signals
    self.inbox = inbox
    self.control = control
    self.spawner = spawner
    self.maxClients = maxClients
  }

  // MARK: The loop

  func run() -> CInt {
    while true {
      let now = Clock.now
      if let until = acceptPausedUntil, until <= now { acceptPausedUntil = nil }
      var waiting = [
        pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: inbox.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(
          fd: acceptPausedUntil == nil ? listener.socket.rawValue : -1, events: Int16(POLLIN), revents: 0),
      ]
      var flushing: [Member] = []
      var deadline = acceptPausedUntil
      for member in members where member.socketOpen {
        if member.pending > 0 {
          waiting.append(pollfd(fd: member.socket.rawValue, events: Int16(POLLOUT), revents: 0))
          flushing.append(member)
        }
        if case .closing(let until) = member.state { deadline = min(deadline ?? until, until) }
      }
      let timeout = deadline.map { CInt(max(0, min(60_000, ($0 - now) * 1000 + 1))) } ?? -1
      do {
        _ = try poll(&waiting, timeout: timeout)
      } catch {
        notice("poll: \(error)")
        stop(nil)
      }
      if waiting[0].revents != 0 { handleSignals() }
      if waiting[1].revents != 0 { readInbox() }
      for (index, member) in flushing.enumerated() where waiting[3 + index].revents != 0 {
        flush(member)
      }
      if waiting[2].revents != 0 { acceptClients() }
      closeExpired()
      sweep()
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
      if present >= maxClients {
        refuse(socket, peer, "the room is full (\(maxClients) clients); try again later")
        continue
      }
      join(socket, peer)
    }
  }

  /// Tells a client why it cannot come in (if its socket takes the line
  /// now), and closes.
  func refuse(_ socket: FileDescriptor, _ peer: SocketAddress, _ why: String) {
    notice("refused \(peer): \(why)")
    let line = Array("* \(why)\n".utf8)
    _ = line.withUnsafeBytes { try? socket.sendNow($0) }
    try? socket.shutdown(CInt(SHUT_WR))
    socket.closeIgnoringErrors()
    Trace.event(.room, "close", "fd=\(socket.rawValue) \(why)")
  }

  /// Hands the client's socket to the spawner, which forks its reader
  /// process, and welcomes the client.
  func join(_ socket: FileDescriptor, _ peer: SocketAddress) {
    let id = nextId
    // Small lines go out at once (no Nagle delay, tcp(7)); a small send
    // buffer so that a client that stops reading shows up in the queue.
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
    Trace.event(.room, "sendmsg", "client=\(id) fd=\(socket.rawValue) to the spawner")
    let member = Member(id: id, socket: socket, peer: peer)
    members.append(member)
    byId[id] = member
    names[nameKey(member.name)] = member
    present += 1
    notice("\(member.name) joined from \(peer)")
    let others = present - 1
    send(
      "* welcome to the room, \(member.name)! \(others == 1 ? "1 other" : "\(others) others") here."
        + " /help lists the commands.\n", to: member)
    broadcast("* \(member.name) joined\n", except: member)
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
    guard let member = byId[record.client], member.isPresent else {
      if case .gone(let client, let how) = record { Trace.event(.room, "gone", "client=\(client) \(how)") }
      return
    }
    switch record {
    case .say(_, let line):
      if line.cut { send("* your line was cut to \(RoomLimits.lineBytes) bytes\n", to: member) }
      say(line.text, from: member)
    case .slow:
      send(
        "* slow down: past \(RoomLimits.floodBurst / 1024) KiB at once, the room takes"
          + " \(RoomLimits.floodRate / 1024) KiB/s from you\n", to: member)
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
      Trace.event(.room, "gone", "client=\(member.id) \(how)")
      leave(member, .died(how))
    }
  }

  // MARK: Lines and commands

  func say(_ text: [UInt8], from member: Member) {
    guard text.first == UInt8(ascii: "/") else {
      let start = Trace.isOn ? Clock.now : 0
      broadcast(Array("\(member.name): ".utf8) + text + [10], except: member)
      if Trace.isOn {
        let micros = Int((Clock.now - start) * 1e6)
        Trace.event(.room, "line", "client=\(member.id) to=\(present - 1) in \(micros) us")
      }
      return
    }
    if text.starts(with: Array("//".utf8)) {  // "//x" says "/x"
      broadcast(Array("\(member.name): ".utf8) + text.dropFirst() + [10], except: member)
      return
    }
    let space = text.firstIndex(of: 32) ?? text.endIndex
    let command = String(decoding: text[..<space], as: UTF8.self).lowercased()
    var argument = Array(text[space...])
    while argument.first == 32 { argument.removeFirst() }
    while argument.last == 32 || argument.last == 9 { argument.removeLast() }
    switch command {
    case "/nick": rename(member, argument)
    case "/who": who(member)
    case "/me":
      if argument.isEmpty {
        send("* usage: /me ACTION\n", to: member)
      } else {
        broadcast(Array("* \(member.name) ".utf8) + argument + [10], except: member)
      }
    case "/quit":
      send("* bye, \(member.name)\n", to: member)
      leave(member, .quit)
    case "/help": send(Self.help, to: member)
    default:
      let shown = String(decoding: cutAtCharacter(Array(command.utf8), 40), as: UTF8.self)
      send("* unknown command \(shown); /help lists the commands\n", to: member)
    }
  }

  static let help = """
    * /nick NAME   take a name: letters, digits, '-', '_', '.', at most \(RoomLimits.nameBytes) bytes
    * /who         who is here
    * /me ACTION   "* NAME ACTION" to everyone else
    * /quit        leave the room (closing the connection does too)
    * /help        this list
    * Any other line goes to everyone else as "NAME: line"; start it with // to send a line starting with /.

    """

  func rename(_ member: Member, _ wanted: [UInt8]) {
    if wanted.isEmpty {
      send("* usage: /nick NAME (you are \(member.name))\n", to: member)
      return
    }
    let name: String
    switch validateName(wanted) {
    case .success(let valid): name = valid
    case .failure(let problem):
      send("* cannot take that name: \(problem.description)\n", to: member)
      return
    }
    if name == member.name {
      send("* you are already \(name)\n", to: member)
      return
    }
    if let holder = names[nameKey(name)], holder !== member {
      send("* the name \(name) is taken\n", to: member)
      return
    }
    let old = member.name
    names[nameKey(old)] = nil
    member.name = name
    names[nameKey(name)] = member
    notice("\(old) is now \(name)")
    Trace.event(.room, "nick", "client=\(member.id) \(old) \(name)")
    broadcast("* \(old) is now known as \(name)\n")
  }

  func who(_ member: Member) {
    let list = members.filter(\.isPresent).map { $0 === member ? "\($0.name) (you)" : $0.name }
    send("* \(list.count) here: \(list.joined(separator: ", "))\n", to: member)
  }

  // MARK: Fan-out

  func broadcast(_ text: String, except sender: Member? = nil) {
    broadcast(Array(text.utf8), except: sender)
  }

  /// Appends `line` to the queue of every present client but `sender`. A
  /// client whose queue would pass the limit is dropped, after the loop
  /// (its leave notice is itself a broadcast).
  func broadcast(_ line: [UInt8], except sender: Member? = nil) {
    var overflowing: [Member] = []
    line.withUnsafeBytes { bytes in
      for member in members where member.isPresent && member !== sender {
        if !enqueue(bytes, for: member) { overflowing.append(member) }
      }
    }
    for member in overflowing { drop(member) }
  }

  func send(_ text: String, to member: Member) {
    let line = Array(text.utf8)
    let fits = line.withUnsafeBytes { enqueue($0, for: member) }
    if !fits { drop(member) }
  }

  /// Queues `bytes` for `member`, first sending at once what its socket
  /// takes if nothing is queued before them. Returns false if they do not
  /// fit in the queue: nothing of them is queued then.
  func enqueue(_ bytes: UnsafeRawBufferPointer, for member: Member) -> Bool {
    if member.outputBroken { return true }
    var start = 0
    if member.pending == 0 {
      do {
        start = try member.socket.sendNow(bytes)
        if start == bytes.count { return true }
      } catch .wouldBlock {
        start = 0
      } catch {
        outputFailed(member, error)
        return true
      }
    }
    if member.pending + bytes.count - start > RoomLimits.queueBytes { return false }
    member.queue += bytes[start...]
    return true
  }

  /// The client's socket can take more: send the queue's next bytes.
  func flush(_ member: Member) {
    guard member.socketOpen, !member.outputBroken else { return }
    while member.pending > 0 {
      do {
        let count = try member.queue[member.sent...].withUnsafeBytes { bytes in
          Result { () throws(Errno) in try member.socket.sendNow(bytes) }
        }.get()
        member.sent += count
      } catch .wouldBlock {
        break
      } catch {
        outputFailed(member, error)
        return
      }
    }
    if member.pending == 0 {
      member.queue = []  // gives the memory back
      member.sent = 0
      if case .closing = member.state { closeSocket(member, reset: false) }
    } else if member.sent >= 16 * 1024 {
      member.queue.removeFirst(member.sent)
      member.sent = 0
    }
  }

  /// A send failed: the client is gone (EPIPE, ECONNRESET). Its reader
  /// sees the same on its side and says bye; until then nothing is sent.
  func outputFailed(_ member: Member, _ error: Errno) {
    Trace.event(.room, "send", "client=\(member.id) failed: \(error)")
    member.outputBroken = true
    member.queue = []
    member.sent = 0
    if case .closing = member.state { closeSocket(member, reset: true) }
  }

  // MARK: Leaving

  func drop(_ member: Member) {
    guard member.isPresent else { return }
    notice("\(member.name) (\(member.peer)) dropped: \(member.pending) bytes queued, not reading")
    leave(member, .dropped)
  }

  /// Takes `member` out of the room: everyone is told, its reader is made
  /// to end if it still runs, and its socket is closed (at once, or once
  /// what is queued for it is out, for a clean ending).
  func leave(_ member: Member, _ how: Leaving) {
    guard member.isPresent else { return }
    member.state = .closing(deadline: Clock.now + RoomLimits.closeWait)
    present -= 1
    names[nameKey(member.name)] = nil
    Trace.event(.room, "leave", "client=\(member.id) \(member.name)\(how.suffix)")
    if case .dropped = how {} else { notice("\(member.name) left\(how.suffix)") }
    broadcast("* \(member.name) left\(how.suffix)\n")
    if !member.readerDone {
      // The spawner stops the reader: the hub cannot kill it by pid, as
      // only the spawner, its parent, knows when that pid stops being the
      // reader's. Should the message not go, shutdown(SHUT_RD), which acts
      // on the socket for every process holding it, ends the reader's
      // next read(2) with end of file.
      do {
        _ = try Array("stop \(member.id)".utf8).withUnsafeBytes { bytes in
          Result { () throws(Errno) in try control.sendNow(bytes) }
        }.get()
        Trace.event(.room, "send", "stop \(member.id) to the spawner")
      } catch {
        try? member.socket.shutdown(CInt(SHUT_RD))
        Trace.event(.room, "shutdown", "client=\(member.id) SHUT_RD")
      }
    }
    if !how.graceful || member.pending == 0 || member.outputBroken {
      closeSocket(member, reset: !how.graceful)
    }
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
    member.queue = []
    member.sent = 0
    Trace.event(.room, "close", "fd=\(member.socket.rawValue) client=\(member.id)\(reset ? " reset" : "")")
  }

  /// Leaving clients whose queue did not get out in time.
  func closeExpired() {
    let now = Clock.now
    for member in members {
      if case .closing(let deadline) = member.state, deadline <= now { closeSocket(member, reset: true) }
    }
  }

  /// Forgets the clients whose socket is closed.
  func sweep() {
    guard members.contains(where: { $0.state == .closed }) else { return }
    members.removeAll { member in
      guard member.state == .closed else { return false }
      byId[member.id] = nil
      return true
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

  /// Ends the room: tells every client, closes every socket, has the
  /// spawner stop and reap every reader, reaps the spawner, then dies of
  /// `signal` (or exits 1 after a failure, `signal` nil).
  func stop(_ signal: CInt?, spawnerReaped: Bool = false) -> Never {
    if let signal { notice("closing the room (\(signalName(signal)))") }
    let line = Array("* the room is closing\n".utf8)
    for member in members where member.isPresent && member.pending == 0 {
      _ = line.withUnsafeBytes { try? member.socket.sendNow($0) }
    }
    for member in members where member.socketOpen {
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
