import Glibc

// forkchat room: a chat room, the Unix way. docs/room.md has the diagram
// and the argument; in short:
//
//   hub (the main process): poll([signals, room pipe, listening socket,
//                                 client sockets with bytes queued])
//     ├─ accept → fork ─ reader process: client socket ──▶ room pipe
//     ├─ room pipe readable → one record at a time, in pipe order:
//     │    a line → "name: text\n" appended to every other client's queue
//     │    a command (/nick, /who, /me, /quit, /help) → acted on
//     ├─ client socket writable → more of its queue, send(MSG_DONTWAIT)
//     └─ SIGCHLD → waitpid(-1, WNOHANG) until no child is left to reap
//
// The hub is the only process that writes to client sockets, and it
// handles one record at a time: that is why every client sees the lines in
// the same order, each line whole. It never waits for a client: a socket
// that does not take a line now gets it queued, and a client whose queue
// passes RoomLimits.queueBytes is dropped.

/// `forkchat room`: where to listen, how many clients.
public struct RoomOptions: Equatable, Sendable {
  public var port: UInt16 = 8080
  public var bindAddress: String? = nil
  public var maxClients = 1000
  public var trace = false
  public init() {}
}

/// Runs a chat room until a signal (SIGINT, SIGTERM, SIGHUP) ends it: then
/// every reader process is stopped and reaped, and the process dies of
/// that signal. Returns the exit status only if the room cannot start or
/// fails (1).
public func runRoom(_ options: RoomOptions) -> CInt {
  // One descriptor per client in the hub, and a few of its own; the soft
  // limit is often 1024, the hard one far higher (getrlimit(2)).
  let reserve = 16
  let limit = raiseOpenFileLimit(to: UInt(options.maxClients + reserve))
  var maxClients = options.maxClients
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
  let signals: SignalPipe
  do throws(Failure) {
    do {
      (inbox, outbox) = try makePipe()
      // Only the hub reads the pipe: non-blocking, so it can read what is
      // there and go back to poll. The write end stays blocking: a reader
      // waits while the pipe is full (back pressure), and a blocking write
      // of at most PIPE_BUF bytes is atomic.
      try inbox.setNonBlocking()
      try listener.socket.setNonBlocking()
    } catch {
      throw Failure("pipe", error)
    }
    do {
      signals = try SignalPipe.install()
    } catch {
      throw Failure("pipe", error)
    }
  } catch {
    notice(error.description)
    return ExitStatus.failure
  }
  Trace.event("room", "pipe", "read=\(inbox.rawValue) write=\(outbox.rawValue)")
  notice("room open on \(listener.description), at most \(maxClients) clients")
  return RoomHub(
    listener: listener, signals: signals, inbox: inbox, outbox: outbox, maxClients: maxClients
  ).run()
}

/// One client, as the hub sees it.
final class Member {
  let id: Int
  let socket: FileDescriptor
  let peer: SocketAddress
  /// The reader process; valid until `reaped` (only the hub reaps it, so
  /// the pid cannot be reused before then).
  let pid: pid_t
  var name: String
  /// Bytes for this client not yet taken by its socket: `queue[sent...]`.
  var queue: [UInt8] = []
  var sent = 0
  var state = State.present
  var reaped = false
  /// The reader said bye: it is exiting on its own.
  var readerDone = false
  /// A send failed (the client is gone): nothing more is sent to it.
  var outputBroken = false

  enum State: Equatable {
    /// In the room: gets every line.
    case present
    /// Has left; its queue is being flushed until the deadline.
    case closing(deadline: Double)
    /// Socket closed; waiting for its reader to be reaped.
    case closed
  }

  init(id: Int, socket: FileDescriptor, peer: SocketAddress, pid: pid_t) {
    self.id = id
    self.socket = socket
    self.peer = peer
    self.pid = pid
    self.name = "guest-\(id)"
  }

  var pending: Int { queue.count - sent }
  var isPresent: Bool { state == .present }
  var socketOpen: Bool { state != .closed }
}

/// Why a client left, for the notice everyone gets.
enum Leaving {
  case closed, reset, error(String), quit, dropped, died(WaitStatus)

  var suffix: String {
    switch self {
    case .closed, .quit: ""
    case .reset: " (connection reset)"
    case .error(let text): " (\(text))"
    case .dropped: " (dropped: not reading)"
    case .died(let status): " (its reader process \(status))"
    }
  }

  /// A clean ending: the client's queue is still worth sending.
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
  /// The room pipe: every reader writes its records into `outbox`; the hub
  /// reads them from `inbox`, in the one order the kernel put them in.
  let inbox: FileDescriptor
  let outbox: FileDescriptor
  let maxClients: Int
  let inboxCapacity: Int

  var members: [Member] = []
  var byId: [Int: Member] = [:]
  var byPid: [pid_t: Member] = [:]
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
    listener: Listener, signals: SignalPipe, inbox: FileDescriptor, outbox: FileDescriptor, maxClients: Int
  ) {
    self.listener = listener
    self.signals = signals
    self.inbox = inbox
    self.outbox = outbox
    self.maxClients = maxClients
    self.inboxCapacity = pipeCapacity(inbox)
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
        if member.pending > 0 && !member.outputBroken {
          waiting.append(pollfd(fd: member.socket.rawValue, events: Int16(POLLOUT), revents: 0))
          flushing.append(member)
        }
        if case .closing(let until) = member.state { deadline = min(deadline ?? until, until) }
      }
      let timeout = deadline.map { CInt(max(0, min(60_000, ($0 - now) * 1000 + 1))) } ?? -1
      do {
        _ = try valueOrErrno { poll(&waiting, nfds_t(waiting.count), timeout) }
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
      Trace.event("room", "accept", "fd=\(socket.rawValue) \(peer)")
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
    Trace.event("room", "close", "fd=\(socket.rawValue) \(why)")
  }

  /// Forks the client's reader process and welcomes the client.
  func join(_ socket: FileDescriptor, _ peer: SocketAddress) {
    let id = nextId
    // Small lines go out at once (no Nagle delay, tcp(7)); a small send
    // buffer so that a client that stops reading shows up in the queue.
    try? socket.setOption(CInt(IPPROTO_TCP), TCP_NODELAY, 1)
    try? socket.setOption(SOL_SOCKET, SO_SNDBUF, CInt(RoomLimits.socketBufferBytes))
    let parentPid = getpid()
    // Blocked across fork(), as in ForkSession: the pid is recorded before
    // any SIGCHLD is handled, and the child takes back the default actions
    // before a pending signal can run the hub's handler.
    let oldMask = SignalSet(sessionSignals).block()
    let pid: pid_t
    do {
      pid = try forkProcess()
    } catch {
      oldMask.setAsMask()
      notice("fork: \(error)")
      refuse(socket, peer, "the server cannot take more clients now")
      return
    }
    if pid == 0 {
      signals.releaseInChild()
      oldMask.setAsMask()
      guard dieWithParent(parentPid: parentPid) else { _exit(1) }
      // The child owns its client's socket and the pipe's write end; every
      // other descriptor (the listening socket, the other clients'
      // sockets, the pipe's read end, stdin and stdout) goes.
      closeDescriptors(except: [socket.rawValue, outbox.rawValue])
      RoomReader(client: id, socket: socket, room: outbox).run()
    }
    oldMask.setAsMask()
    nextId += 1
    Trace.event("room", "fork", "reader=\(pid) client=\(id) \(peer)")
    let member = Member(id: id, socket: socket, peer: peer, pid: pid)
    members.append(member)
    byId[id] = member
    byPid[pid] = member
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
  /// record, in order. Returns the bytes read (0: nothing was there).
  @discardableResult
  func readInbox() -> Int {
    let count: Int
    do {
      count = try inbox.read(into: buffer)
    } catch .wouldBlock {
      return 0
    } catch {
      notice("read from the room pipe: \(error)")
      stop(nil)
    }
    var start = 0
    let bytes = UnsafeRawBufferPointer(rebasing: buffer[..<count])
    // A record never straddles two reads unless the pipe held more than
    // our buffer; then its start waits in `carry`.
    if !carry.isEmpty, let end = bytes.firstIndex(of: 10) {
      carry += bytes[..<end]
      let record = carry
      carry = []
      handle(record[...])
      start = end + 1
    } else if !carry.isEmpty {
      carry += bytes
      return count
    }
    while start < count {
      guard let end = bytes[start...].firstIndex(of: 10) else {
        carry = Array(bytes[start...])
        break
      }
      handle(Array(bytes[start..<end])[...])
      start = end + 1
    }
    return count
  }

  /// Reads until the pipe is empty, or until it has given as many bytes
  /// as it can hold: then every record that was in it when this started
  /// has been read (SIGCHLD: the records a dead reader wrote come before
  /// the news of its death).
  func drainInbox() {
    var total = 0
    while total < inboxCapacity {
      let count = readInbox()
      if count == 0 { return }
      total += count
    }
  }

  func handle(_ bytes: ArraySlice<UInt8>) {
    guard let record = RoomRecord(bytes) else {
      notice("room pipe: unreadable record")
      return
    }
    // Records of a client who has left (its reader is being stopped) are
    // dropped: nothing it sends after its leave notice reaches anyone.
    guard let member = byId[record.client], member.isPresent else { return }
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
    }
  }

  // MARK: Lines and commands

  func say(_ text: [UInt8], from member: Member) {
    guard text.first == UInt8(ascii: "/") else {
      broadcast(Array("\(member.name): ".utf8) + text + [10], except: member)
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
    * Every other line goes to everyone else as "NAME: line"; start it with // to send a line starting with /.

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
    Trace.event("room", "nick", "client=\(member.id) \(old) \(name)")
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

  /// Queues `bytes` for `member`, sending at once what its socket takes if
  /// nothing is queued before them. Returns false if they do not fit.
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
        break
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
    Trace.event("room", "send", "client=\(member.id) failed: \(error)")
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

  /// Takes `member` out of the room: everyone is told, its reader is
  /// stopped if still running, and its socket is closed (at once, or once
  /// its queue is out for a clean ending).
  func leave(_ member: Member, _ how: Leaving) {
    guard member.isPresent else { return }
    member.state = .closing(deadline: Clock.now + RoomLimits.closeWait)
    present -= 1
    names[nameKey(member.name)] = nil
    Trace.event("room", "leave", "client=\(member.id) \(member.name)\(how.suffix)")
    if case .dropped = how {} else { notice("\(member.name) left\(how.suffix)") }
    broadcast("* \(member.name) left\(how.suffix)\n")
    if !member.readerDone && !member.reaped {
      // Not reaped yet, so the pid is still this reader's, even if it has
      // just exited (a zombie keeps its pid until waitpid).
      Trace.event("room", "kill", "\(member.pid) SIGTERM")
      try? sendSignal(SIGTERM, to: member.pid)
      try? sendSignal(SIGCONT, to: member.pid)
    }
    if !how.graceful || member.pending == 0 || member.outputBroken {
      closeSocket(member, reset: !how.graceful)
    }
  }

  /// Closes the hub's descriptor of a client's socket. A clean close sends
  /// FIN now (shutdown: the reader may still hold the socket for a moment);
  /// a reset drops whatever is queued in the kernel.
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
    Trace.event("room", "close", "fd=\(member.socket.rawValue) client=\(member.id)\(reset ? " reset" : "")")
  }

  /// Leaving clients whose queue did not get out in time.
  func closeExpired() {
    let now = Clock.now
    for member in members {
      if case .closing(let deadline) = member.state, deadline <= now { closeSocket(member, reset: true) }
    }
  }

  /// Forgets the clients whose socket is closed and whose reader is reaped.
  func sweep() {
    guard members.contains(where: { $0.state == .closed && $0.reaped }) else { return }
    members.removeAll { member in
      guard member.state == .closed && member.reaped else { return false }
      byId[member.id] = nil
      return true
    }
  }

  // MARK: Signals and children

  func handleSignals() {
    let received = signals.drain()
    for signal in received { Trace.event("room", "signal", signalAbbreviation(signal)) }
    if let stop = received.first(where: { $0 != SIGCHLD }) { self.stop(stop) }
    if received.contains(SIGCHLD) { reapReaders() }
  }

  /// Reaps every reader that has ended (one SIGCHLD may stand for many).
  /// A reader that ended without its bye record (killed from outside) takes
  /// its client out of the room, after the records it did write.
  func reapReaders() {
    var ended: [(Member, WaitStatus)] = []
    while true {
      var status: CInt = 0
      let pid = waitpid(-1, &status, WNOHANG)
      if pid <= 0 { break }
      let how = WaitStatus(rawValue: status)
      Trace.event("room", "waitpid", "\(pid) \(how.traceDescription)")
      guard let member = byPid.removeValue(forKey: pid) else { continue }
      member.reaped = true
      if member.isPresent { ended.append((member, how)) }
    }
    guard !ended.isEmpty else { return }
    drainInbox()
    for (member, how) in ended where member.isPresent { leave(member, .died(how)) }
  }

  /// Ends the room: tells every client, stops and reaps every reader,
  /// closes every socket, then dies of `signal` (or exits 1 after a
  /// failure, `signal` nil).
  func stop(_ signal: CInt?) -> Never {
    if let signal { notice("closing the room (\(signalName(signal)))") }
    let line = Array("* the room is closing\n".utf8)
    for member in members where member.isPresent && member.pending == 0 {
      _ = line.withUnsafeBytes { try? member.socket.sendNow($0) }
    }
    let running = members.filter { !$0.reaped }
    for member in running {
      Trace.event("room", "kill", "\(member.pid) SIGTERM")
      try? sendSignal(SIGTERM, to: member.pid)
      try? sendSignal(SIGCONT, to: member.pid)
    }
    for member in members where member.socketOpen {
      try? member.socket.shutdown(CInt(SHUT_WR))
      member.socket.closeIgnoringErrors()
      member.state = .closed
    }
    for member in running {
      if let status = try? waitForChild(member.pid) {
        Trace.event("room", "waitpid", "\(member.pid) \(status.traceDescription)")
      }
      member.reaped = true
    }
    listener.socket.closeIgnoringErrors()
    inbox.closeIgnoringErrors()
    outbox.closeIgnoringErrors()
    let pending = signals.uninstall()
    guard let signal = signal ?? pending.first(where: { $0 != SIGCHLD }) else {
      Trace.event("room", "exit", "\(ExitStatus.failure)")
      exit(ExitStatus.failure)
    }
    dieOfSignal(signal, role: "room")
  }
}
