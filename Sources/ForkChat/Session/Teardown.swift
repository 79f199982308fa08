// The teardown contract (README, "How a chat ends"), shared by every mode:
// a small state machine over the two directions of the chat. Each mode
// changes it only through the named transitions below, one per row of the
// README's table:
//
// | README row                                   | transition      |
// |----------------------------------------------|-----------------|
// | your input ends (Ctrl-D, end of a pipe)      | inputEnded      |
// | you type the quit word                       | inputEnded      |
// | the peer closes                              | peerClosed      |
// | connection reset, or a write fails           | sendingFailed   |
// |                                              | receivingFailed |
// | the sending process is killed                | senderKilled    |
// | the peer vanishes (--dead-peer)              | peerVanished    |
// | (our sending side stopped by us)             | senderStopped   |
// | (--linger: the peer did not close in time)   | lingerEnded     |
//
// Ctrl-C, SIGTERM and SIGHUP are not states: the process stops its sending
// side and dies of the signal (SignalPipe.die). With the chat screen, the
// transitions also show the new state in its status row.

/// Where the two directions of a session stand, and whether it is over.
struct Teardown {
  /// Our sending side: standard input to the socket.
  enum Sending: Equatable {
    /// Still copying.
    case running
    /// Our input ended and all of it was sent, FIN included.
    case finished
    /// Stopped by us: the peer closed while a person was typing, or a
    /// signal asked us to end.
    case stopped
    /// A read or write failed (and said why): the chat is broken.
    case failed
    /// The sending process was killed: the peer has been sent FIN, and its
    /// data is still shown until it closes; the exit status says failure.
    case killed
  }

  /// Our receiving side: the socket to standard output.
  enum Receiving: Equatable {
    /// Still copying.
    case open
    /// The peer's FIN arrived: end of file on the socket.
    case closed
    /// We stopped waiting for the peer's FIN: the linger time passed.
    case abandoned
    /// A read or write failed (and said why).
    case failed
  }

  let session: Session
  let role: Role
  private(set) var sending = Sending.running
  private(set) var receiving = Receiving.open
  /// Once our input has ended: when we stop waiting for the peer to close
  /// (nil: no limit).
  private(set) var lingerDeadline: Double? = nil
  /// A vanished peer has been reported (by `peerVanished`): once.
  private(set) var vanishReported = false

  init(session: Session, role: Role) {
    self.session = session
    self.role = role
  }

  var isSending: Bool { sending == .running }
  var isReceiving: Bool { receiving == .open }

  /// A failure ends everything at once; otherwise the session is over when
  /// both directions are.
  var isOver: Bool {
    sending == .failed || receiving == .failed || (!isSending && !isReceiving)
  }

  /// The session's outcome, for the exit status.
  var result: SessionResult {
    sending == .failed || sending == .killed || receiving == .failed ? .failed : .finished
  }

  /// Our input ended and all of it was sent, FIN included: wait for the
  /// peer's end, at most the linger time.
  mutating func inputEnded() {
    sending = .finished
    if isReceiving, let linger = session.lingerTime { lingerDeadline = Clock.now + linger }
    session.screen?.show(.inputEnded(linger: isReceiving ? session.lingerTime.map(formatSeconds) : nil))
  }

  /// Sending failed (and said why): the chat is broken.
  mutating func sendingFailed() {
    sending = .failed
  }

  /// The sending process was killed by a signal (and the peer sent FIN).
  mutating func senderKilled() {
    sending = .killed
    session.screen?.show(.inputEnded(linger: nil))  // its input line is the parent's to clear
  }

  /// We stopped our sending side ourselves.
  mutating func senderStopped() {
    if isSending { sending = .stopped }
  }

  /// The socket's end of file was read: the peer's FIN, as a rule. Returns
  /// true if our sending side must now be stopped: a person at a terminal
  /// is not left typing to nobody, while a pipe's data goes on (the peer
  /// may only have shut down its sending side).
  ///
  /// Or the kernel gave up on a peer that vanished, and the ETIMEDOUT it
  /// keeps for one call went to our sending side: then the end is no FIN
  /// (`peerVanished`), and the sending side must be stopped (it can only
  /// fail).
  mutating func peerClosed() -> Bool {
    Trace.event(role, "eof", "socket")
    if session.socket.kernelGaveUpOnPeer {
      peerVanished("read from")
      return isSending
    }
    receiving = .closed
    notice("\(session.peer) closed the connection")
    session.screen?.show(.peerClosed)
    return session.inputIsTerminal && isSending
  }

  /// The kernel gave up on the peer (no answer to retransmissions or
  /// keepalive probes, `--dead-peer`), met by `what` ("read from", "write
  /// to"): nothing more will come from it, and the chat has failed. Said
  /// once: the receiving and the sending side may both meet it. The error
  /// is the one still waiting on the socket, if the other side did not
  /// take it: ETIMEDOUT, or the ICMP error that came before.
  mutating func peerVanished(_ what: String) {
    if isReceiving { receiving = .failed }
    guard !vanishReported else { return }
    vanishReported = true
    let error = (try? session.socket.pendingError()) ?? nil
    notice("\(what) \(session.peer): \(error ?? .timedOut)")
  }

  /// Receiving failed (and said why).
  mutating func receivingFailed() {
    receiving = .failed
  }

  /// The poll(2) timeout until the linger deadline, in ms (-1: none).
  var pollTimeout: CInt {
    Clock.pollTimeout(until: lingerDeadline)
  }

  /// A wait with `pollTimeout` ran out: if the linger time is over, stops
  /// waiting for the peer, and says so on stderr.
  mutating func lingerEnded() {
    guard let deadline = lingerDeadline, Clock.now >= deadline, isReceiving else { return }
    let linger = formatSeconds(session.lingerTime ?? 0)
    notice("\(session.peer) did not close within \(linger) s; closing")
    receiving = .abandoned
  }
}
