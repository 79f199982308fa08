import Glibc
import Testing

@testable import ForkChat

// The teardown contract, one transition at a time, for every row of the
// endings table (README "How a chat ends", docs/design.md 1 to 8): pure
// events in, the states and the actions out. No socket, no clock.

private let peer = "127.0.0.1 port 8080"

private func terminalTeardown() -> Teardown {
  Teardown(peer: peer, lingerTime: 2, inputIsTerminal: true)
}

private func pipeTeardown(linger: Double? = nil) -> Teardown {
  Teardown(peer: peer, lingerTime: linger, inputIsTerminal: false)
}

@Suite("Teardown: the endings table")
struct TeardownTests {
  @Test func aNewSessionRunsBothWays() {
    let teardown = terminalTeardown()
    #expect(teardown.isSending && teardown.isReceiving && !teardown.isOver)
    #expect(teardown.lingerDeadline == nil)
  }

  // 1. Our input ends (Ctrl-D, end of a pipe): wait for the peer, at most
  // the linger time; then the peer's FIN ends the chat with exit 0.
  @Test func inputEndedWaitsForThePeerAtMostTheLingerTime() {
    var teardown = terminalTeardown()
    let actions = teardown.handle(.inputEnded(now: 100))
    #expect(actions == [.show(.inputEnded(linger: "2"))])
    #expect(teardown.sending == .finished && teardown.isReceiving && !teardown.isOver)
    #expect(teardown.lingerDeadline == 102)
  }

  @Test func inputEndedFromAPipeWaitsWithoutLimit() {
    var teardown = pipeTeardown()
    #expect(teardown.handle(.inputEnded(now: 100)) == [.show(.inputEnded(linger: nil))])
    #expect(teardown.lingerDeadline == nil && !teardown.isOver)
  }

  @Test func inputEndedThenPeerClosedIsAFinishedChat() {
    var teardown = terminalTeardown()
    _ = teardown.handle(.inputEnded(now: 100))
    let actions = teardown.handle(.peerClosed(kernelGaveUp: false, pendingError: nil))
    #expect(
      actions == [
        .trace(event: "eof", details: "socket"), .notice("\(peer) closed the connection"), .show(.peerClosed),
      ])
    #expect(teardown.isOver && teardown.result == .finished)
  }

  @Test func lingerEndedBeforeTheDeadlineChangesNothing() {
    var teardown = terminalTeardown()
    _ = teardown.handle(.inputEnded(now: 100))
    #expect(teardown.handle(.lingerEnded(now: 101.5)) == [])
    #expect(teardown.isReceiving && !teardown.isOver)
  }

  @Test func lingerEndedAtTheDeadlineAbandonsThePeer() {
    var teardown = terminalTeardown()
    _ = teardown.handle(.inputEnded(now: 100))
    #expect(teardown.handle(.lingerEnded(now: 102)) == [.notice("\(peer) did not close within 2 s; closing")])
    #expect(teardown.receiving == .abandoned && teardown.isOver && teardown.result == .finished)
  }

  @Test func lingerEndedWithoutADeadlineChangesNothing() {
    var teardown = pipeTeardown()
    #expect(teardown.handle(.lingerEnded(now: 1e9)) == [])
    #expect(!teardown.isOver)
  }

  // 2. The quit word: the line is sent, then as 1 (the same event).
  @Test func theQuitWordIsAnInputEnd() {
    var typed = terminalTeardown()
    var ended = terminalTeardown()
    #expect(typed.handle(.inputEnded(now: 5)) == ended.handle(.inputEnded(now: 5)))
    #expect(typed == ended)
  }

  // 3. The peer closes: a person is done at once (the sending side is
  // stopped); a pipe's data still goes until it ends.
  @Test func peerClosedAtATerminalStopsTheSender() {
    var teardown = terminalTeardown()
    let actions = teardown.handle(.peerClosed(kernelGaveUp: false, pendingError: nil))
    #expect(actions.last == .stopSender)
    #expect(teardown.receiving == .closed && !teardown.isOver)
    #expect(teardown.handle(.senderStopped) == [])
    #expect(teardown.sending == .stopped && teardown.isOver && teardown.result == .finished)
  }

  @Test func peerClosedWithAPipeKeepsSending() {
    var teardown = pipeTeardown()
    let actions = teardown.handle(.peerClosed(kernelGaveUp: false, pendingError: nil))
    #expect(!actions.contains(.stopSender))
    #expect(teardown.receiving == .closed && teardown.isSending && !teardown.isOver)
    _ = teardown.handle(.inputEnded(now: 7))
    #expect(teardown.lingerDeadline == nil, "no wait for a peer already closed")
    #expect(teardown.isOver && teardown.result == .finished)
  }

  // 4. Connection reset, or a write fails: exit 1, at once.
  @Test func sendingFailedEndsTheChatAsAFailure() {
    var teardown = pipeTeardown()
    #expect(teardown.handle(.sendingFailed) == [])
    #expect(teardown.isOver && teardown.result == .failed)
  }

  @Test func receivingFailedEndsTheChatAsAFailure() {
    var teardown = pipeTeardown()
    #expect(teardown.handle(.receivingFailed) == [])
    #expect(teardown.isOver && teardown.result == .failed)
  }

  // 5, 6. Ctrl-C, SIGTERM, SIGHUP; SIGKILL: not states (SignalPipe.die,
  // the kernel). Our own stop of the sending side is one:
  @Test func senderStoppedOnlyStopsARunningSender() {
    var teardown = pipeTeardown()
    _ = teardown.handle(.inputEnded(now: 1))
    _ = teardown.handle(.senderStopped)
    #expect(teardown.sending == .finished, "an input that ended stays ended")
    var running = pipeTeardown()
    _ = running.handle(.senderStopped)
    #expect(running.sending == .stopped && !running.isOver, "the peer's data is still shown")
  }

  // 7. The sending process is killed: FIN to the peer, its data still
  // shown until it closes, exit 1.
  @Test func senderKilledSendsFINAndKeepsReceiving() {
    var teardown = terminalTeardown()
    let actions = teardown.handle(.senderKilled(who: "sending process 42", signal: SIGKILL))
    #expect(
      actions == [
        .notice("sending process 42 killed by signal 9 (Killed)"), .show(.inputEnded(linger: nil)), .sendFIN,
      ])
    #expect(teardown.sending == .killed && teardown.isReceiving && !teardown.isOver)
    _ = teardown.handle(.peerClosed(kernelGaveUp: false, pendingError: nil))
    #expect(teardown.isOver && teardown.result == .failed)
  }

  // 8. The peer vanishes (--dead-peer): said once, whichever side meets it
  // first, with the error the socket kept; exit 1.
  @Test func peerVanishedMetByTheReceiverStopsTheSender() {
    var teardown = terminalTeardown()
    let actions = teardown.handle(
      .peerClosed(kernelGaveUp: true, pendingError: Errno(rawValue: EHOSTUNREACH)))
    #expect(
      actions == [
        .trace(event: "eof", details: "socket"), .notice("read from \(peer): No route to host"), .stopSender,
      ])
    #expect(teardown.receiving == .failed && teardown.isOver && teardown.result == .failed)
    #expect(!teardown.wantsPendingError)
  }

  @Test func peerVanishedMetByTheSenderSaysConnectionTimedOut() {
    var teardown = pipeTeardown()
    #expect(teardown.wantsPendingError)
    #expect(
      teardown.handle(.peerVanished(what: "write to", pendingError: nil)) == [
        .notice("write to \(peer): Connection timed out")
      ])
    _ = teardown.handle(.sendingFailed)
    #expect(teardown.isOver && teardown.result == .failed)
  }

  @Test func aVanishedPeerIsReportedOnce() {
    var teardown = pipeTeardown()
    _ = teardown.handle(.peerVanished(what: "write to", pendingError: nil))
    let second = teardown.handle(.peerClosed(kernelGaveUp: true, pendingError: nil))
    #expect(second == [.trace(event: "eof", details: "socket"), .stopSender])
  }
}
