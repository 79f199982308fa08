import Glibc
import Testing

@testable import ForkChat

/// Forks a child that ignores SIGTERM (or not), and waits until it has
/// set that up: the child writes one byte into a pipe once it is ready.
/// After fork() in this many-threaded test process, the child calls only
/// async-signal-safe functions (signal, write, pause), then is killed.
private func forkWaitingChild(ignoringTerm: Bool) throws -> pid_t {
  var ends: [CInt] = [-1, -1]
  #expect(pipe(&ends) == 0)
  let pid = fork()
  if pid == 0 {
    // The test runner's threads may block signals: the child unblocks them.
    var none = sigset_t()
    sigemptyset(&none)
    sigprocmask(SIG_SETMASK, &none, nil)
    _ = signal(SIGTERM, ignoringTerm ? SIG_IGN : SIG_DFL)
    var byte: UInt8 = 1
    _ = write(ends[1], &byte, 1)
    while true { pause() }
  }
  close(ends[1])
  var byte: UInt8 = 0
  #expect(read(ends[0], &byte, 1) == 1)
  close(ends[0])
  return pid
}

// The self-pipe's handler is process-wide: these tests run one at a time.
@Suite("Stopping a child", .serialized)
struct ChildProcessTests {
  @Test func aChildThatEndsOnSIGTERMIsReapedBeforeTheGraceIsOver() throws {
    let signals = try SignalPipe.install([SIGCHLD])
    defer { _ = signals.uninstall() }
    let pid = try forkWaitingChild(ignoringTerm: false)
    let start = Clock.now
    let ended = stopAndReap([pid], role: .parent, signals: signals, grace: 5)
    #expect(ended == [pid: .signaled(SIGTERM)])
    #expect(Clock.now - start < 2.5, "woken by SIGCHLD, not by the end of the grace")
  }

  @Test func aChildThatIgnoresSIGTERMGetsSIGKILLAfterTheGrace() throws {
    let signals = try SignalPipe.install([SIGCHLD])
    defer { _ = signals.uninstall() }
    let pid = try forkWaitingChild(ignoringTerm: true)
    let start = Clock.now
    let ended = stopAndReap([pid], role: .parent, signals: signals, grace: 0.3)
    let elapsed = Clock.now - start
    #expect(ended == [pid: .signaled(SIGKILL)])
    #expect(elapsed >= 0.3 && elapsed < 3, "elapsed \(elapsed) s")
  }

  @Test func withoutASelfPipeTheWaitIsBoundedToo() throws {
    let pid = try forkWaitingChild(ignoringTerm: true)
    let ended = stopAndReap([pid], role: .parent, signals: nil, grace: 0.1)
    #expect(ended == [pid: .signaled(SIGKILL)])
  }

  @Test func aStopRequestThatComesDuringTheWaitIsKeptForTheCaller() throws {
    let signals = try SignalPipe.install([SIGCHLD, SIGINT])
    defer { _ = signals.uninstall() }
    let pid = try forkWaitingChild(ignoringTerm: true)
    var interrupt = SignalSet([SIGINT]).set
    var old = sigset_t()
    pthread_sigmask(SIG_UNBLOCK, &interrupt, &old)
    defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
    _ = raise(SIGINT)  // in the pipe before the wait reads it
    _ = stopAndReap([pid], role: .parent, signals: signals, grace: 0.2)
    #expect(signals.drain().filter { $0 != SIGCHLD } == [SIGINT])
  }

  @Test func childExitStatusesMeanOneThingEach() {
    let codes = [ChildExit.done, .failed, .peerVanished, .parentGone].map(\.rawValue)
    #expect(Set(codes).count == codes.count)
    #expect(WaitStatus.exited(2).childExit == .peerVanished)
    #expect(WaitStatus.exited(0).childExit == .done)
    #expect(WaitStatus.exited(77).childExit == nil)
    #expect(WaitStatus.signaled(SIGKILL).childExit == nil)
  }

  @Test func aSignalIgnoredAtStartIsReportedSo() {
    // The test runner starts with SIGKILL's default action: never SIG_IGN.
    #expect(!isIgnoredAtStart(SIGKILL))
    #expect(!isIgnoredAtStart(0) && !isIgnoredAtStart(200))
  }
}
