import CForkChat
import Glibc

/// How a child process ended, from the status waitpid(2) reports
/// (the C macros WIFEXITED, WEXITSTATUS, WTERMSIG decoded by hand, since
/// Swift does not import function-like macros).
public enum WaitStatus: Equatable, CustomStringConvertible, Sendable {
  case exited(CInt)
  case signaled(CInt)

  init(rawValue status: CInt) {
    let signal = status & 0x7f
    self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
  }

  /// "exited 0", "signaled SIGTERM": the form --trace prints.
  public var traceDescription: String {
    switch self {
    case .exited(let code): "exited \(code)"
    case .signaled(let signal): "signaled \(signalAbbreviation(signal))"
    }
  }

  public var description: String {
    switch self {
    case .exited(let code): "exited with status \(code)"
    case .signaled(let signal): "killed by signal \(signal) (\(signalName(signal)))"
    }
  }
}

/// Creates a child process, a copy of this one. Returns 0 in the child and
/// the child's pid in the parent.
///
/// Standard output is flushed first, or the child would inherit (and later
/// write again) whatever the C library still buffers. Call only while this
/// process has one thread: the child gets a copy of the calling thread
/// alone, and a lock held by any other thread would stay locked forever.
///
/// The corresponding C function is `fork`.
public func forkProcess() throws(Errno) -> pid_t {
  fflush(nil)
  return try valueOrErrno(retryOnInterrupt: false) { fork() }
}

/// Forks a child that runs `body` and ends with `_exit` of what it
/// returns: the one way forkchat creates processes.
///
/// - The signals `signals` handles stay blocked from before fork() until
///   the parent has the child's pid, so a child that ends at once cannot be
///   missed by the parent's SIGCHLD handling.
/// - The child restores the default signal actions *before* it unblocks
///   them (a pending Ctrl-C must kill it, not run the parent's handler,
///   which writes into the parent's self-pipe), and closes the pipe.
/// - The child dies with its parent (`dieWithParent`), and closes the
///   descriptors in `closing`, which it does not own.
/// - The child leaves with `_exit`, not `exit`: the C library's exit
///   handlers and buffers belong to the parent.
///
/// `role` and `parentRole` name the two processes in --trace lines.
/// Returns the child's pid (in the parent only).
public func forkChild(
  signals: SignalPipe, role: String, parentRole: String, closing: [FileDescriptor],
  _ body: () -> CInt
) throws(Errno) -> pid_t {
  let parentPid = getpid()
  let oldMask = SignalSet(signals.signals).block()
  let forkTime = Clock.now
  let pid: pid_t
  do {
    pid = try forkProcess()
  } catch {
    oldMask.setAsMask()
    throw error
  }
  if pid == 0 {
    signals.releaseInChild()
    oldMask.setAsMask()
    guard dieWithParent(parentPid: parentPid) else { _exit(1) }
    for descriptor in closing { descriptor.closeIgnoringErrors() }
    let status = body()
    Trace.event(role, "exit", "\(status)")
    _exit(status)
  }
  Trace.event(parentRole, "fork", "child=\(pid)", at: forkTime)
  oldMask.setAsMask()
  return pid
}

/// Waits for `pid` to end and returns how it ended. With `noHang`, returns
/// nil at once if the child is still running. Retries on EINTR.
///
/// The corresponding C function is `waitpid`.
public func waitForChild(_ pid: pid_t, noHang: Bool = false) throws(Errno) -> WaitStatus? {
  try reap(pid, noHang: noHang)?.status
}

/// waitpid(2) for `pid` (-1: any child): the pid reaped and how it ended,
/// or nil if, with `noHang`, none has ended yet.
private func reap(_ pid: pid_t, noHang: Bool) throws(Errno) -> (pid: pid_t, status: WaitStatus)? {
  var status: CInt = 0
  let result = try valueOrErrno { waitpid(pid, &status, noHang ? WNOHANG : 0) }
  return result == 0 ? nil : (result, WaitStatus(rawValue: status))
}

/// Reaps every child that has ended, without waiting for the others: one
/// SIGCHLD may stand for several children (signals of one kind do not
/// queue), so waitpid(-1, WNOHANG) runs until none is left to reap.
/// `role` names the caller in --trace lines. Returns them in reaping order.
public func reapEndedChildren(role: String) -> [(pid: pid_t, status: WaitStatus)] {
  var ended: [(pid: pid_t, status: WaitStatus)] = []
  while let child = (try? reap(-1, noHang: true)) ?? nil {
    Trace.event(role, "waitpid", "\(child.pid) \(child.status.traceDescription)")
    ended.append(child)
  }
  return ended
}

/// Stops children and reaps them: SIGTERM to each, and SIGCONT after it
/// (a child stopped by Ctrl-Z gets its SIGTERM only once continued), then
/// waitpid for each. `role` names the caller in --trace lines.
public func stopAndReap(_ pids: [pid_t], role: String) {
  for pid in pids {
    Trace.event(role, "kill", "\(pid) SIGTERM")
    try? sendSignal(SIGTERM, to: pid)
    try? sendSignal(SIGCONT, to: pid)
  }
  for pid in pids {
    if let status = (try? waitForChild(pid)) ?? nil {
      Trace.event(role, "waitpid", "\(pid) \(status.traceDescription)")
    }
  }
}

/// Sends `signal` to process `pid`.
///
/// The corresponding C function is `kill`.
public func sendSignal(_ signal: CInt, to pid: pid_t) throws(Errno) {
  try nothingOrErrno { kill(pid, signal) }
}

/// In a child: asks the kernel to SIGKILL this process as soon as its
/// parent dies (prctl(2) PR_SET_PDEATHSIG), then checks that the parent is
/// not already gone (it may have died between fork and prctl, in which
/// case this process was already re-parented and no signal will come).
/// Returns false if the parent is gone.
public func dieWithParent(parentPid: pid_t) -> Bool {
  _ = forkchat_set_parent_death_signal(SIGKILL)
  return getppid() == parentPid
}
