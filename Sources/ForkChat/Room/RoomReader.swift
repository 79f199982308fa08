import Glibc

// A reader process: one per client, forked by the hub when the client
// joins. It owns three descriptors and nothing else:
//
//   client socket ──read──▶ [ LineFramer, flood control ] ──write──▶ room pipe
//   stderr (trace lines)
//
// It never writes the socket: only the hub does, so that the bytes every
// client receives come from one process, in one order. It blocks in
// read(2), in poll(2) (a line without a newline waits for silence) or in
// nanosleep(2) (flood control) as it likes: blocking one process per
// client is the point of forking one per client. A flooding client is held
// back here, by TCP itself: while its reader sleeps, nobody reads its
// socket, its window closes and its sends block; nobody else waits.
//
// It starts by writing "ID start" and ends by writing "ID bye REASON" and _exit(0). The spawner may also end
// it with SIGTERM when the hub asks (the client typed /quit, or was
// dropped), or the kernel with SIGKILL if the spawner dies
// (PR_SET_PDEATHSIG).

struct RoomReader {
  let client: Int
  let socket: FileDescriptor
  /// The write end of the room pipe, shared by every reader.
  let room: FileDescriptor
  /// Flood control: the bytes of log this client may fill at once.
  let floodBurst: Int
  /// Allocated by the spawner, once, before its first fork: a reader
  /// writes them only once its client sends. The line buffer is where the
  /// client's bytes are read, the line made visible and its record put
  /// together; the read buffer, the spare page where bytes not read yet
  /// go when a line grows faster than it came (InPlaceFramer).
  let readBuffer: UnsafeMutableRawBufferPointer
  let lineBuffer: UnsafeMutableRawBufferPointer

  /// A page each: every page a reader writes is a page of its own (fork
  /// shares the others). A line is at most 4000 bytes anyway.
  static let bufferBytes = 4096
  static let lineBytes = 4096

  /// Reads lines from the client and hands them to the hub, until the
  /// client closes or resets the connection. Never returns.
  func run() -> Never {
    // Trace's details are built only when tracing: a String built here
    // would be a malloc, and the allocator's pages this reader's own.
    if Trace.isOn { Trace.event(.reader, "start", "client=\(client) fd=\(socket.rawValue)") }
    // The hub welcomes the client only once its reader runs: a client
    // whose reader could not be forked is told so, never welcomed first.
    // Written by the reader itself, so that it comes before its lines.
    write(.start(client: client))
    var framer = InPlaceFramer(storage: lineBuffer, spare: readBuffer)
    var bucket = TokenBucket(capacity: floodBurst, rate: RoomLimits.floodRate, now: Clock.now)
    var held = false

    func hand(_ input: FoundInput) {
      // Flood control: past the burst, wait until the bucket allows what
      // this line may add to the log. Nothing reads the socket meanwhile.
      let now = Clock.now
      if bucket.isFull(now: now) { held = false }
      let cost =
        switch input {
        case .line(let line): RoomLimits.cost(of: line.text, cut: line.cut)
        case .telnet: RoomLimits.floodLineCost
        }
      let wait = bucket.delay(cost: cost, now: now)
      if wait > 0 {
        if !held {
          held = true
          write(.slow(client: client))
          if Trace.isOn { Trace.event(.reader, "slow", "client=\(client) \(Int(wait * 1000)) ms") }
        }
        sleepUnlessReset(wait)
      }
      switch input {
      case .line(let line): write(line.record(client: client))
      case .telnet(let reply): write(.telnet(client: client, reply))
      }
    }

    while true {
      if framer.hasPartial {
        // Bytes without a newline: a line once the client is silent.
        let ready = (try? pollSocket(events: POLLIN, timeout: CInt(RoomLimits.partialLineWait * 1000))) ?? 1
        if ready == 0 {
          framer.flushPartial(hand)
          continue
        }
      }
      let count: Int
      // Into the line buffer, past the line so far, most of the time: a
      // reader whose client speaks writes that page only (InPlaceFramer).
      let space = framer.readSpace()
      do {
        count = try socket.read(into: space)
      } catch {
        // A reset in the middle of a line: the half line is not delivered.
        framer.discardPartial()
        end(Self.reason(error))
      }
      if count == 0 {
        // The kernel reports a socket's error once, to one call: if the
        // hub's send took the ETIMEDOUT of a vanished client, this read
        // sees a mere end of file. TCP_INFO tells the two apart.
        if socket.kernelGaveUpOnPeer {
          framer.discardPartial()
          end("timeout")
        }
        // An orderly close (FIN): what came without a newline is a line.
        framer.flushPartial(hand)
        end("eof")
      }
      // Each line goes to the hub as soon as its end is seen, made visible
      // in the line buffer, while the rest of the read waits behind it.
      framer.feed(UnsafeRawBufferPointer(rebasing: space[..<count]), hand)
    }
  }

  /// Sleeps for `seconds` (flood control), but ends the reader at once if
  /// the connection is reset meanwhile: the lines still waiting in the
  /// socket's buffer were never taken by the room, and a reset drops them.
  /// (A reset does not empty the receive buffer: read(2) would return its
  /// bytes first, and only then ECONNRESET.) poll(2) with no event asked
  /// for still reports POLLERR and POLLHUP.
  private func sleepUnlessReset(_ seconds: Double) {
    let deadline = Clock.now + seconds
    while true {
      let left = deadline - Clock.now
      if left <= 0 { return }
      let ready = (try? pollSocket(events: 0, timeout: CInt(left * 1000) + 1)) ?? 0
      guard ready > 0 else { continue }
      let error = (try? socket.pendingError()) ?? nil
      end(error.map(Self.reason) ?? (socket.kernelGaveUpOnPeer ? "timeout" : "reset"))
    }
  }

  /// poll(2) on the client's socket alone, its pollfd on the stack (an
  /// array would be a malloc).
  private func pollSocket(events: CInt, timeout: CInt) throws(Errno) -> CInt {
    var waiting = pollfd(fd: socket.rawValue, events: Int16(events), revents: 0)
    return try valueOrErrno { system_poll(&waiting, 1, timeout) }
  }

  /// The bye reason for a failed read: "reset", "timeout" (keepalive or
  /// TCP_USER_TIMEOUT gave up: the client vanished), "unreachable" (ICMP),
  /// or the error's text.
  static func reason(_ error: Errno) -> String {
    switch error.rawValue {
    case ECONNRESET: "reset"
    case ETIMEDOUT: "timeout"
    case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN: "unreachable"
    default: error.description
    }
  }

  /// One record into the room pipe: a single write(2) of at most PIPE_BUF
  /// bytes, which the kernel makes atomic. If the hub is gone (EPIPE),
  /// there is nobody left to talk to.
  ///
  /// No malloc: every page a reader writes is a page of its own (fork(2)
  /// shares the others), and a malloc writes the allocator's pages. A
  /// line's record ("17 say hello") is put together around the line in
  /// the line buffer (`FoundLine.record`), which the line was made
  /// visible in; the others below.
  private func write(_ record: UnsafeRawBufferPointer) {
    do {
      try room.writeAll(record)
    } catch {
      Trace.event(.reader, "exit", "1 (room pipe: \(error))")
      _exit(1)
    }
  }

  /// A record without a line: one without a text ("17 start", "17 slow")
  /// is written from the 64 bytes of stack it is built in; "17 bye eof",
  /// the last, is put together in the read buffer, which holds nothing
  /// the reader still needs by then.
  private func write(_ record: RoomRecord) {
    do {
      try record.withPieces { head, text, end throws(Errno) in
        if text.isEmpty { return try room.writeAll(head) }
        // At most 64 + 4000 + 1 bytes (RoomLimits.lineBytes): it fits.
        let kept = min(text.count, readBuffer.count - head.count - end.count)
        var whole = 0
        func put(_ piece: UnsafeRawBufferPointer) {
          UnsafeMutableRawBufferPointer(rebasing: readBuffer[whole...]).copyMemory(from: piece)
          whole += piece.count
        }
        put(head)
        put(UnsafeRawBufferPointer(rebasing: text[..<kept]))
        put(end)
        try room.writeAll(UnsafeRawBufferPointer(rebasing: readBuffer[..<whole]))
      }
    } catch {
      Trace.event(.reader, "exit", "1 (room pipe: \(error))")
      _exit(1)
    }
  }

  private func end(_ reason: String) -> Never {
    if Trace.isOn { Trace.event(.reader, "eof", "client=\(client) \(reason)") }
    write(.bye(client: client, reason: reason))
    if Trace.isOn { Trace.event(.reader, "exit", "0") }
    _exit(0)
  }
}
