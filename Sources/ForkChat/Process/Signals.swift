import CForkChat
import Glibc

// Signals reach the session through a self-pipe: the handler writes the
// signal's number as one byte into a pipe, and the session's poll(2) loop
// reads it like any other input. Nothing else happens inside the handler,
// because only async-signal-safe functions may run there (signal-safety(7)):
// write(2) is one; Swift allocation, locks and printing are not. The
// handler is C (`forward_signal` in Sources/CForkChat/CForkChat.c): a Swift
// function would call the runtime's exclusivity checks in a debug build.
//
// A signal that was ignored when the program started (nohup's SIGHUP, the
// SIGINT and SIGQUIT of a job that a non-interactive shell starts with &)
// stays ignored: `install` leaves it alone, and every process forkchat
// forks inherits it ignored.

/// Whether `signal` was ignored (SIG_IGN) when the program started.
public func isIgnoredAtStart(_ signal: CInt) -> Bool {
  forkchat_ignored_at_start(signal) != 0
}

/// Signals that forkchat's handlers keep track of, held back for a later
/// `drain`: those read from the pipe while waiting for a child
/// (`stopAndReap`), which are not that child's SIGCHLD.
///
/// A class, so that every copy of a `SignalPipe` shares it; used by one
/// thread (the one that polls the pipe).
final class HeldSignals {
  var signals: [CInt] = []
}

/// A set of signals, as sigprocmask(2) and sigaction(2) take it.
public struct SignalSet {
  var set = sigset_t()

  public init(_ signals: [CInt]) {
    sigemptyset(&set)
    for signal in signals { sigaddset(&set, signal) }
  }

  /// Every signal (SIGKILL and SIGSTOP cannot be blocked all the same).
  public static var all: SignalSet {
    var all = SignalSet([])
    sigfillset(&all.set)
    return all
  }

  /// Blocks these signals in the calling thread and returns its previous
  /// mask: a blocked signal stays pending until it is unblocked. (In a
  /// process of one thread, the process's mask: sigprocmask(2).)
  ///
  /// The corresponding C function is `pthread_sigmask` (SIG_BLOCK).
  public func block() -> SignalSet {
    var old = SignalSet([])
    var set = self.set
    pthread_sigmask(SIG_BLOCK, &set, &old.set)
    return old
  }

  /// Makes this set the calling thread's signal mask.
  ///
  /// The corresponding C function is `pthread_sigmask` (SIG_SETMASK).
  public func setAsMask() {
    var mask = set
    pthread_sigmask(SIG_SETMASK, &mask, nil)
  }
}

/// The signals a session handles: the child's end, and the three that
/// ask a program to stop (Ctrl-C, kill's default, a closed terminal).
public let sessionSignals: [CInt] = [SIGCHLD] + stopSignals

/// The signals that ask a program to stop.
public let stopSignals: [CInt] = [SIGINT, SIGTERM, SIGHUP]

/// The read end of the self-pipe, and the signals it carries.
public struct SignalPipe {
  public let readEnd: FileDescriptor
  let writeEnd: FileDescriptor
  let signals: [CInt]
  let held = HeldSignals()

  /// Creates the pipe (both ends non-blocking and close-on-exec) and
  /// installs the handler for `signals` with sigaction(2), without
  /// SA_RESTART so that a blocked read or write returns EINTR. A signal
  /// ignored at start keeps SIG_IGN (`isIgnoredAtStart`), except SIGCHLD:
  /// ignored, it would let the kernel reap the children itself, and
  /// waitpid(2) could no longer say how they ended.
  public static func install(_ signals: [CInt] = sessionSignals) throws(Errno) -> SignalPipe {
    let ends = try makePipe(flags: O_NONBLOCK)
    let old = SignalSet(signals).block()
    defer { old.setAsMask() }
    forkchat_set_signal_pipe(ends.write.rawValue)
    for signal in signals where signal == SIGCHLD || !isIgnoredAtStart(signal) {
      _ = forkchat_handle_signal(signal)
    }
    return SignalPipe(readEnd: ends.read, writeEnd: ends.write, signals: signals)
  }

  /// Keeps `signals`, read from the pipe, for the next `drain`.
  func hold(_ signals: [CInt]) {
    held.signals += signals
  }

  /// Whether a signal came since the last `drain` (in the pipe or held):
  /// asked without a system call.
  public var arrived: Bool { forkchat_signal_arrived() != 0 || !held.signals.isEmpty }

  /// Reads the signals delivered since the last call (oldest first).
  public func drain() -> [CInt] {
    forkchat_clear_signal_arrived()  // first: a signal after it sets it again
    var received = held.signals
    held.signals.removeAll()
    var bytes = [UInt8](repeating: 0, count: 64)
    while true {
      let count = bytes.withUnsafeMutableBytes { (try? readEnd.read(into: $0)) ?? 0 }
      if count <= 0 { return received }
      received += bytes[..<count].map { CInt($0) }
    }
  }

  /// Reads the signals delivered since the last call, tracing each as
  /// received by `role`. Returns the first stop request (SIGINT, SIGTERM,
  /// SIGHUP), if any, and whether a child has ended (SIGCHLD).
  public func receive(role: Role) -> (stop: CInt?, childEnded: Bool) {
    let received = receiveAll(role: role)
    return (received.stop, received.childEnded)
  }

  /// `receive`, and the other signals that came (the chat screen's
  /// SIGWINCH and SIGTSTP), each once, in order.
  public func receiveAll(role: Role) -> (stop: CInt?, childEnded: Bool, others: [CInt]) {
    let received = drain()
    for signal in received { Trace.event(role, "signal", signalAbbreviation(signal)) }
    var others: [CInt] = []
    for signal in received
    where signal != SIGCHLD && !stopSignals.contains(signal) && !others.contains(signal) {
      others.append(signal)
    }
    return (received.first { stopSignals.contains($0) }, received.contains(SIGCHLD), others)
  }

  /// Uninstalls the handlers and ends the process as `signal` asks; call
  /// once the children or threads are stopped.
  public func die(of signal: CInt, role: Role) -> Never {
    _ = uninstall()
    dieOfSignal(signal, role: role)
  }

  /// Ends the use of the pipe at the end of a session: uninstalls the
  /// handlers; a stop request (SIGINT, SIGTERM, SIGHUP) that came but was
  /// not acted on yet still ends the process, now, as it asked.
  public func finish(role: Role) {
    if let stop = uninstall().first(where: { stopSignals.contains($0) }) { dieOfSignal(stop, role: role) }
  }

  /// Puts back the default action of every signal and closes the pipe.
  /// Returns the signals that arrived and were not drained yet.
  public func uninstall() -> [CInt] {
    let old = SignalSet(signals).block()
    restoreStartActions(signals)
    let pending = drain()
    forkchat_set_signal_pipe(-1)
    readEnd.closeIgnoringErrors()
    writeEnd.closeIgnoringErrors()
    old.setAsMask()
    return pending
  }

  /// The child's first act after fork(): it must not run the parent's
  /// handler (which writes into the parent's pipe), so it takes back the
  /// actions the program started with and closes both ends.
  public func releaseInChild() {
    restoreStartActions(signals)
    held.signals.removeAll()
    forkchat_set_signal_pipe(-1)
    readEnd.closeIgnoringErrors()
    writeEnd.closeIgnoringErrors()
  }
}

/// Puts back the action each of `signals` had when the program started:
/// SIG_IGN for one ignored at start, SIG_DFL for the others.
public func restoreStartActions(_ signals: [CInt]) {
  for signal in signals { setAction(signal, isIgnoredAtStart(signal) ? SIG_IGN : SIG_DFL) }
}

/// sigaction(2) with SIG_DFL or SIG_IGN.
func setAction(_ signal: CInt, _ handler: __sighandler_t?) {
  var action = sigaction()
  action.__sigaction_handler.sa_handler = handler
  sigemptyset(&action.sa_mask)
  sigaction(signal, &action, nil)
}

/// Ends this process the way `signal` would have ended it, so that the
/// shell sees "killed by SIGINT" (status 128+N) and, for SIGINT, stops a
/// running script too: restore the default action, unblock, raise.
public func dieOfSignal(_ signal: CInt, role: Role) -> Never {
  Trace.event(role, "exit", "signal \(signalAbbreviation(signal))")
  setAction(signal, SIG_DFL)
  var unblock = SignalSet([signal]).set
  pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
  raise(signal)
  _exit(128 + signal)  // not reached: the default action of these signals ends the process
}

/// The name strsignal(3) gives, e.g. "Killed", "Terminated".
public func signalName(_ signal: CInt) -> String {
  strsignal(signal).map { String(cString: $0) } ?? "signal \(signal)"
}
