// The teardown contract (README, "How a chat ends"), shared by every mode:
// a small state machine over the two directions of the chat. It is pure:
// an event in (`handle`), the new state and a list of actions out; it does
// no I/O and reads no clock (the time comes with the events that need it).
// The mode's loop performs the actions (`Session.perform`): a notice on
// stderr, the chat screen's status row, FIN, stopping the sending side.
// One event per row of the README's table:
//
// | README row                                   | event            |
// |----------------------------------------------|------------------|
// | your input ends (Ctrl-D, end of a pipe)      | inputEnded       |
// | you type the quit word                       | inputEnded       |
// | the peer closes                              | peerClosed       |
// | connection reset, or a write fails           | sendingFailed    |
// |                                              | receivingFailed  |
// | the sending process is killed                | senderKilled     |
// | the peer vanishes (--dead-peer)              | peerVanished,    |
// |                                              | peerClosed       |
// | (our sending side stopped by us)             | senderStopped    |
// | (--linger: the peer did not close in time)   | lingerEnded      |
//
// Ctrl-C, SIGTERM and SIGHUP are not states: the process stops its sending
// side and dies of the signal (SignalPipe.die). Tests/ForkChatTests/
// TeardownTests.swift checks every transition.

/// Where the two directions of a session stand, and whether it is over.
struct Teardown: Equatable {
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

  /// What happened, as the mode's loop saw it.
  enum Event: Equatable {
    /// Our input ended and all of it was sent, FIN included, at `now`.
    case inputEnded(now: Double)
    /// Sending failed (and said why).
    case sendingFailed
    /// The sending process `who` ("sending process 123") was killed by
    /// `signal`.
    case senderKilled(who: String, signal: CInt)
    /// We stopped our sending side ourselves.
    case senderStopped
    /// The socket's end of file was read. `kernelGaveUp`: the kernel had
    /// given up on the peer (the end is no FIN), `pendingError` the error
    /// still waiting on the socket then (nil: ETIMEDOUT).
    case peerClosed(kernelGaveUp: Bool, pendingError: Errno?)
    /// The kernel gave up on the peer, met by `what` ("read from", "write
    /// to"), with `pendingError` still on the socket (nil: ETIMEDOUT).
    case peerVanished(what: String, pendingError: Errno?)
    /// Receiving failed (and said why).
    case receivingFailed
    /// A wait up to `lingerDeadline` (the linger time) ended at `now`.
    case lingerEnded(now: Double)
  }

  /// What the mode's loop must do about an event, in this order.
  enum Action: Equatable {
    /// A --trace line by the loop's role.
    case trace(event: String, details: String)
    /// A line on stderr, "forkchat: " first.
    case notice(String)
    /// The chat screen's status row, if the screen is up.
    case show(ChatState)
    /// FIN to the peer (shutdown SHUT_WR).
    case sendFIN
    /// Stop our sending side (the child, the thread, the terminal's
    /// reading); the mode then reports `senderStopped`.
    case stopSender
  }

  /// The peer, as notices name it ("127.0.0.1 port 8080").
  let peer: String
  /// Seconds to wait for the peer's end once our input has ended (nil:
  /// no limit).
  let lingerTime: Double?
  /// Whether a person types our input (a terminal).
  let inputIsTerminal: Bool

  private(set) var sending = Sending.running
  private(set) var receiving = Receiving.open
  /// Once our input has ended: when we stop waiting for the peer to close
  /// (nil: no limit).
  private(set) var lingerDeadline: Double? = nil
  /// A vanished peer has been reported (by `peerVanished`): once.
  private(set) var vanishReported = false

  init(peer: String, lingerTime: Double?, inputIsTerminal: Bool) {
    self.peer = peer
    self.lingerTime = lingerTime
    self.inputIsTerminal = inputIsTerminal
  }

  var isSending: Bool { sending == .running }
  var isReceiving: Bool { receiving == .open }
  /// Receiving, with no linger time running: nothing but the peer's bytes
  /// (or a signal) can move the session on, so the receiving side may stay
  /// in its copy while bulk data flows (`OutputWriter.copyOnce`).
  var waitsOnlyForThePeer: Bool { isReceiving && lingerDeadline == nil }

  /// A failure ends everything at once; otherwise the session is over when
  /// both directions are.
  var isOver: Bool {
    sending == .failed || receiving == .failed || (!isSending && !isReceiving)
  }

  /// The session's outcome, for the exit status.
  var result: SessionResult {
    sending == .failed || sending == .killed || receiving == .failed ? .failed : .finished
  }

  /// Whether a vanished peer is still to be reported: only then does the
  /// loop need to read the socket's pending error (SO_ERROR, which the
  /// read clears) for `peerClosed` and `peerVanished`.
  var wantsPendingError: Bool { !vanishReported }

  /// Applies `event`; returns what the loop must do.
  mutating func handle(_ event: Event) -> [Action] {
    switch event {
    case .inputEnded(let now):
      // Wait for the peer's end, at most the linger time.
      sending = .finished
      if isReceiving, let lingerTime { lingerDeadline = now + lingerTime }
      return [.show(.inputEnded(linger: isReceiving ? lingerTime.map(formatSeconds) : nil))]
    case .sendingFailed:
      sending = .failed
      return []
    case .senderKilled(let who, let signal):
      // Tell the peer nothing more will come, and keep printing what it
      // still sends; the sender's input line is the receiver's to clear.
      sending = .killed
      return [
        .notice("\(who) killed by signal \(signal) (\(signalName(signal)))"), .show(.inputEnded(linger: nil)),
        .sendFIN,
      ]
    case .senderStopped:
      if isSending { sending = .stopped }
      return []
    case .peerClosed(let kernelGaveUp, let pendingError):
      // The peer's FIN, as a rule: a person at a terminal is not left
      // typing to nobody, while a pipe's data goes on (the peer may only
      // have shut down its sending side). Or the kernel gave up on a peer
      // that vanished, and the ETIMEDOUT it keeps for one call went to our
      // sending side: then the sending side must be stopped (it can only
      // fail).
      let eof = Action.trace(event: "eof", details: "socket")
      if kernelGaveUp {
        return [eof] + vanished("read from", pendingError) + (isSending ? [.stopSender] : [])
      }
      receiving = .closed
      return [eof, .notice("\(peer) closed the connection"), .show(.peerClosed)]
        + (inputIsTerminal && isSending ? [.stopSender] : [])
    case .peerVanished(let what, let pendingError):
      return vanished(what, pendingError)
    case .receivingFailed:
      receiving = .failed
      return []
    case .lingerEnded(let now):
      guard let deadline = lingerDeadline, now >= deadline, isReceiving else { return [] }
      receiving = .abandoned
      return [.notice("\(peer) did not close within \(formatSeconds(lingerTime ?? 0)) s; closing")]
    }
  }

  /// The kernel gave up on the peer (no answer to retransmissions or
  /// keepalive probes, `--dead-peer`): nothing more will come from it, and
  /// the chat has failed. Said once: the receiving and the sending side
  /// may both meet it.
  private mutating func vanished(_ what: String, _ pendingError: Errno?) -> [Action] {
    if isReceiving { receiving = .failed }
    guard !vanishReported else { return [] }
    vanishReported = true
    return [.notice("\(what) \(peer): \(pendingError ?? .timedOut)")]
  }
}

extension Session {
  /// A teardown for this session.
  func makeTeardown() -> Teardown {
    Teardown(peer: peer.description, lingerTime: lingerTime, inputIsTerminal: inputIsTerminal)
  }

  /// The socket's end of file, as `Teardown` takes it: whether the kernel
  /// gave up on the peer, and the error it left (read only if `teardown`
  /// still has to report one).
  func socketEnded(_ teardown: Teardown) -> Teardown.Event {
    let gaveUp = socket.kernelGaveUpOnPeer
    return .peerClosed(kernelGaveUp: gaveUp, pendingError: gaveUp ? pendingError(teardown) : nil)
  }

  /// Our sending side met a peer the kernel gave up on.
  func peerVanished(_ teardown: Teardown, what: String) -> Teardown.Event {
    .peerVanished(what: what, pendingError: pendingError(teardown))
  }

  private func pendingError(_ teardown: Teardown) -> Errno? {
    teardown.wantsPendingError ? ((try? socket.pendingError()) ?? nil) : nil
  }

  /// Performs a teardown's actions, in order, as `role`; `stopSender` is
  /// the mode's way of stopping its sending side.
  func perform(_ actions: [Teardown.Action], role: Role, stopSender: () -> Void = {}) {
    for action in actions {
      switch action {
      case .trace(let event, let details): Trace.event(role, event, details)
      case .notice(let text): notice(text)
      case .show(let state): screen?.show(state)
      case .sendFIN: try? sendFIN(role: role)
      case .stopSender: stopSender()
      }
    }
  }
}
