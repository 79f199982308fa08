import CForkChat
import Glibc

// The spawner: the process that forks the readers, and reaps them.
//
// Why not fork them from the hub? fork(2) copies the parent's memory
// lazily: parent and child share every page until one of them writes it,
// and then the writer gets a copy and the other keeps the original alone.
// The hub writes its memory all the time (queues, the member list), so a
// reader forked from it would soon own a private copy of every page of
// the hub it was forked from: the more clients, the bigger the hub, the
// bigger each new reader. The spawner is forked from the hub at the start,
// while the hub is small, and then writes almost nothing, so the readers
// it forks share nearly all of their memory with it and with one another.
//
//   hub ── "17" + client socket (SCM_RIGHTS) ──▶ spawner ── fork ──▶ reader 17
//   hub ── "stop 17" ───────────────────────────▶ spawner ── SIGTERM ─▶ reader 17
//   hub ◀── "17 gone signaled SIGTERM" (room pipe) spawner ◀── SIGCHLD
//
// Only the spawner may signal a reader: it is the reader's parent, so the
// pid stays the reader's until the spawner itself reaps it (a pid is free
// for reuse only after waitpid).
//
// The "gone" record goes into the room pipe after waitpid(2) has returned,
// so after everything the reader itself wrote there: the hub reads the
// reader's last line, then its bye, then the news of its end.

struct RoomSpawner {
  /// The spawner's end of the control socket pair (SOCK_SEQPACKET).
  let control: FileDescriptor
  /// The write end of the room pipe, for the readers and the gone records.
  let room: FileDescriptor
  let maxClients: Int
  /// Each reader's flood-control burst, in bytes.
  let floodBurst: Int

  /// Forks a reader for every socket the hub sends, until the hub goes
  /// away (end of file on `control`) or a signal stops the room: then
  /// every reader is stopped and reaped first. Never returns.
  func run() -> Never {
    let signals: SignalPipe
    do {
      signals = try SignalPipe.install()
    } catch {
      notice("spawner: pipe: \(error)")
      _exit(1)
    }
    Trace.event(.spawner, "start", "control=\(control.rawValue) room=\(room.rawValue)")
    // The kernel writes each thread's rseq area (Fork.c): the spawner
    // gives it up, so that its readers never have it written.
    if forkchat_unregister_rseq() != 0 { notice("spawner: rseq: \(Errno.current)") }
    warmUp()
    // The reader's two pages, allocated once and never written here: a
    // reader owns them only once its client sends.
    let buffers = UnsafeMutableRawBufferPointer.allocate(
      byteCount: RoomReader.bufferBytes + RoomReader.lineBytes, alignment: 4096)
    var readers = ReaderTable(capacity: maxClients)
    // From the first fork on, the loop touches no heap: its poll set and
    // the hub's messages live on the stack, and Trace's details are built
    // only when tracing. A page the spawner writes after forking a reader
    // is a page that reader then maps alone (its copy of the old one).
    var waiting = (
      pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0),
      pollfd(fd: control.rawValue, events: Int16(POLLIN), revents: 0)
    )
    var message = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    while true {
      waiting.0.revents = 0
      waiting.1.revents = 0
      do {
        _ = try withUnsafeMutableBytes(of: &waiting) { entries throws(Errno) in
          try valueOrErrno { system_poll(entries.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, -1) }
        }
      } catch {
        notice("spawner: poll: \(error)")
        stop(&readers, signals, nil, status: 1)
      }
      if waiting.0.revents != 0 {
        let (stop, childEnded) = signals.receive(role: .spawner)
        if let stop { self.stop(&readers, signals, stop) }
        if childEnded { reap(&readers) }
      }
      if waiting.1.revents != 0 {
        let received: (count: Int, descriptor: FileDescriptor?)?
        do {
          received = try withUnsafeMutableBytes(of: &message) { bytes throws(Errno) in
            try control.receive(into: bytes)
          }
        } catch {
          notice("spawner: recvmsg: \(error)")
          stop(&readers, signals, nil, status: 1)
        }
        guard let received else { stop(&readers, signals, nil) }  // the hub is gone
        let (isStop, client) = withUnsafeBytes(of: &message) {
          Self.parse(UnsafeRawBufferPointer(rebasing: $0[..<received.count]))
        }
        if received.descriptor == nil, isStop, let client {
          // The client has left the room (/quit, dropped): its reader may
          // be asleep (flood control) or blocked; it has nothing to finish.
          if let pid = readers.pid(ofClient: client) {
            if Trace.isOn { Trace.event(.spawner, "kill", "\(pid) SIGTERM client=\(client)") }
            try? kill(pid: pid, signal: SIGTERM)
            try? kill(pid: pid, signal: SIGCONT)
          }
          continue
        }
        guard let socket = received.descriptor, !isStop, let client else {
          received.descriptor?.closeIgnoringErrors()
          notice("spawner: unreadable message")
          continue
        }
        if let pid = spawn(client, socket, signals, buffers) {
          readers.insert(pid, client: client)
          if Trace.isOn { Trace.event(.spawner, "reader", "\(pid) client=\(client)") }
        }
        socket.closeIgnoringErrors()  // the reader has it; the hub keeps its own
      }
    }
  }

  /// Reads a message of the hub's: "17" (with client 17's socket) or
  /// "stop 17". Returns whether it is a stop, and the client's number
  /// (nil if the message holds none), without building a String.
  static func parse(_ bytes: UnsafeRawBufferPointer) -> (isStop: Bool, client: Int?) {
    let prefix = ("stop " as StaticString).utf8Bytes
    let isStop = bytes.starts(with: prefix)
    let digits = isStop ? UnsafeRawBufferPointer(rebasing: bytes[prefix.count...]) : bytes
    guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
      return (isStop, nil)
    }
    return (isStop, digits.reduce(0) { $0 * 10 + Int($1 - 48) })
  }

  /// Runs, once, the code a reader runs, so that the Swift runtime builds
  /// the type metadata and caches it needs here, in pages every reader
  /// then shares, instead of once in each reader (measured: a reader's
  /// private memory goes from 68 to 44 KiB).
  private func warmUp() {
    let line = UnsafeMutableRawBufferPointer.allocate(byteCount: RoomReader.lineBytes, alignment: 16)
    defer { line.deallocate() }
    var framer = InPlaceFramer(storage: line)
    var bucket = TokenBucket(capacity: floodBurst, rate: RoomLimits.floodRate, now: Clock.now)
    func hand(_ input: FoundInput) {
      switch input {
      case .line(let line):
        _ = bucket.delay(cost: RoomLimits.cost(of: line.text, cut: line.cut), now: Clock.now)
        _ = line.record(client: 1)
      case .telnet(let reply): _ = Self.warmUp(.telnet(client: 1, reply))
      }
    }
    // A line, /who, /help, accents, a control byte, a C1 control, bad
    // UTF-8, a telnet negotiation, a line cut at the limit, a half line.
    let sample =
      Array("warm up\r\n/who\n/HELP\né\u{1B}\u{9B}\n".utf8) + [0xE6, 0x41, 10, 0xFF, 0xFD, 0x06]
      + [UInt8](repeating: 0x78, count: RoomLimits.lineBytes + 2) + Array("\nhalf".utf8)
    sample.withUnsafeBytes { framer.feed($0, hand) }
    framer.flushPartial(hand)
    _ = bucket.isFull(now: Clock.now)
    framer.discardPartial()
    _ = Self.warmUp(.bye(client: 1, reason: "eof"))
    _ = Self.warmUp(.slow(client: 1))
    _ = Self.warmUp(.start(client: 1))
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: RoomReader.bufferBytes, alignment: 16)
    buffer.deallocate()
  }

  /// A record's length, as a reader builds it (RoomRecord.withPieces).
  private static func warmUp(_ record: RoomRecord) -> Int {
    (try? record.withPieces { head, text, end throws(Errno) in head.count + text.count + end.count }) ?? 0
  }

  /// Forks the reader of `client`. Returns its pid, or nil if fork failed
  /// (the hub is told with a gone record).
  private func spawn(
    _ client: Int, _ socket: FileDescriptor, _ signals: SignalPipe,
    _ buffers: UnsafeMutableRawBufferPointer
  ) -> pid_t? {
    let pid: pid_t
    do {
      pid = try forkReader(signals)
    } catch {
      notice("spawner: fork: \(error)")
      record(.gone(client: client, how: "fork failed: \(error)"))
      return nil
    }
    if pid == 0 {
      // The reader keeps its client's socket, the room pipe's write end
      // and stderr; not the control socket, not the spawner's signal pipe.
      // It ends with _exit (RoomReader.end).
      closeDescriptors(except: [socket.rawValue, room.rawValue])
      RoomReader(
        client: client, socket: socket, room: room, floodBurst: floodBurst,
        readBuffer: UnsafeMutableRawBufferPointer(rebasing: buffers[..<RoomReader.bufferBytes]),
        lineBuffer: UnsafeMutableRawBufferPointer(rebasing: buffers[RoomReader.bufferBytes...])
      )
      .run()
    }
    return pid
  }

  /// fork(2) for a reader, as `forkChild` does it but with the system call
  /// itself (Fork.c): glibc's fork() writes four pages of its own locks
  /// that every reader would then own a copy of. The spawner's signals stay
  /// blocked across the call, so that the child never runs the spawner's
  /// handler; the child takes the actions of the program's start back (SIG_DFL, or SIG_IGN for a signal ignored at start) before unblocking.
  /// It leaves the handler's global alone (signalPipeWriteEnd): only the
  /// handler reads it, and writing it would cost the reader one more page.
  /// Returns the child's pid, or 0 in the child.
  private func forkReader(_ signals: SignalPipe) throws(Errno) -> pid_t {
    let parentPid = getpid()
    let oldMask = SignalSet(signals.signals).block()
    let forkTime = Trace.isOn ? Clock.now : 0
    let pid: pid_t
    do {
      pid = try valueOrErrno(retryOnInterrupt: false) { forkchat_fork_system_call() }
    } catch {
      oldMask.setAsMask()
      throw error
    }
    if pid == 0 {
      restoreStartActions(signals.signals)
      oldMask.setAsMask()
      guard dieWithParent(parentPid: parentPid) else { _exit(1) }
      return 0
    }
    if Trace.isOn { Trace.event(.spawner, "fork", "child=\(pid)", at: forkTime) }
    oldMask.setAsMask()
    return pid
  }

  /// Reaps every reader that has ended, and tells the hub.
  private func reap(_ readers: inout ReaderTable) {
    for (pid, status) in reapEndedChildren(role: .spawner) {
      if let client = readers.removeValue(forKey: pid) {
        record(.gone(client: client, how: status.traceDescription))
      }
    }
  }

  private func record(_ record: RoomRecord) {
    do {
      try room.writeAll(record.bytes)
    } catch {
      _exit(1)  // the hub is gone, and the room with it
    }
  }

  /// Stops and reaps every reader, then dies of `signal`, or exits with
  /// `status` (0: the hub has gone away; 1: a call failed, reported).
  private func stop(
    _ readers: inout ReaderTable, _ signals: SignalPipe, _ signal: CInt?, status: CInt = 0
  ) -> Never {
    stopAndReap(readers.pids, role: .spawner)
    if let signal { signals.die(of: signal, role: .spawner) }
    _ = signals.uninstall()
    Trace.event(.spawner, "exit", "\(status)")
    _exit(status)
  }
}

/// The spawner's table of its readers: pid and client, one slot each, in
/// memory that fork(2) does not copy (madvise(2) MADV_DONTFORK). Every join
/// writes a slot; in memory a reader shares, each such write after a fork
/// would leave that reader alone with the old copy of the page: with a
/// Dictionary (its bitmap, keys and values spread over twelve pages), 11
/// KiB of every reader's memory was its spawner's table as it was at the
/// fork. A reader never reads the table, so it need not have it at all.
struct ReaderTable {
  private let slots: UnsafeMutableBufferPointer<(pid: pid_t, client: Int32)>

  /// Maps the table; a reader forked later does not have it. If mmap
  /// fails, the table lives on the heap (readers then cost more).
  init(capacity: Int) {
    let bytes = (max(1, capacity) * MemoryLayout<(pid: pid_t, client: Int32)>.stride + 4095) & ~4095
    let count = bytes / MemoryLayout<(pid: pid_t, client: Int32)>.stride
    let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if let mapped, mapped != MAP_FAILED {
      _ = madvise(mapped, bytes, MADV_DONTFORK)
      let start = mapped.assumingMemoryBound(to: (pid: pid_t, client: Int32).self)
      slots = UnsafeMutableBufferPointer(start: start, count: count)
    } else {
      slots = .allocate(capacity: count)
    }
    slots.initialize(repeating: (pid: 0, client: 0))
  }

  /// Records the reader `pid` of `client` (a pid is never 0).
  mutating func insert(_ pid: pid_t, client: Int) {
    if let free = slots.firstIndex(where: { $0.pid == 0 }) {
      slots[free] = (pid: pid, client: Int32(client))
    }
  }

  func pid(ofClient client: Int) -> pid_t? {
    slots.first(where: { $0.pid != 0 && $0.client == Int32(client) })?.pid
  }

  /// Forgets `pid`; returns its client, or nil if it was not a reader.
  mutating func removeValue(forKey pid: pid_t) -> Int? {
    guard let index = slots.firstIndex(where: { $0.pid == pid }) else { return nil }
    let client = Int(slots[index].client)
    slots[index] = (pid: 0, client: 0)
    return client
  }

  /// Every reader's pid.
  var pids: [pid_t] { slots.filter { $0.pid != 0 }.map(\.pid) }
}
