import Glibc

// How the hub gets lines to the clients: into the log (RoomLog.swift),
// then out of it, to each client from its cursor on, without ever waiting
// for one; and how a client leaves, of its own will or dropped.

extension RoomHub {
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
    for member in members.all where member.socketOpen && !member.isJoining && member.cursor < log.start {
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
    for member in members.all where member.socketOpen && !member.isJoining {
      oldest = min(oldest, member.cursor)
    }
    log.trim(before: oldest)
  }

  // MARK: Sending

  /// Sends every client whose socket is not full what the log holds for it.
  func sendAll() {
    let start = Trace.isOn ? Clock.now : 0
    let log = self.log  // read-only here: a copy shares the blocks, and spares an access check per call
    var clients = 0
    for member in members.all
    where member.socketOpen && !member.isJoining && !member.socketFull && !member.outputBroken {
      if send(member, from: log) { clients += 1 }
    }
    if Trace.isOn && clients > 0 {
      Trace.event(.room, "fanout", "clients=\(clients) in \(Int((Clock.now - start) * 1e6)) us")
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
    Trace.event(.room, "send", "client=\(member.id) failed: \(error)")
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
    Trace.event(.room, "leave", "client=\(member.id) \(member.name)\(how.suffix)")
    switch how {
    case .stalled, .behind, .silent: break  // the drop notice said it
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
        Trace.event(.room, "send", "stop \(member.id) to the spawner")
      } catch {
        try? member.socket.shutdown(CInt(SHUT_RD))
        Trace.event(.room, "shutdown", "client=\(member.id) SHUT_RD")
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
      try? member.socket.resetOnClose()
    } else {
      try? member.socket.shutdown(CInt(SHUT_WR))
    }
    member.socket.closeIgnoringErrors()
    member.state = .closed
    member.waitingSince = nil
    someoneClosed = true
    Trace.event(.room, "close", "fd=\(member.socket.rawValue) client=\(member.id)\(reset ? " reset" : "")")
  }

  /// Leaving clients that did not take their last lines in time.
  func closeExpired() {
    let now = Clock.now
    for member in members.all {
      if case .leaving(_, let deadline) = member.state, deadline <= now { closeSocket(member, reset: true) }
    }
  }
}
