import CForkChat
import Glibc

/// How a child process ended, from the status waitpid(2) reports.
public enum WaitStatus: Equatable, CustomStringConvertible, Sendable {
  case exited(CInt)
  case signaled(CInt)

  /// Decodes a status with the C macros WIFEXITED, WEXITSTATUS and
  /// WTERMSIG (through the C shim: Swift does not import function-like
  /// macros).
  init(rawValue status: CInt) {
    self =
      forkchat_wifexited(status) != 0
      ? .exited(forkchat_wexitstatus(status)) : .signaled(forkchat_wtermsig(status))
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

/// Creates a child process, a copy of this one: returns 0 in the child and
/// the child's pid in the parent, as fork() does. It is the one place
/// forkchat forks, and it does first what every one of its children needs
/// (the callers branch on `pid == 0`, as in Stevens' UNP):
///
/// - Standard output is flushed before fork(), or the child would inherit
///   (and later write again) whatever the C library still buffers.
/// - The signals `signals` handles stay blocked from before fork() until
///   the parent has the child's pid, so a child that ends at once cannot be
///   missed by the parent's SIGCHLD handling.
/// - The child restores the default signal actions *before* it unblocks
///   them (a pending Ctrl-C must kill it, not run the parent's handler,
///   which writes into the parent's self-pipe), and closes that pipe.
/// - The child dies with its parent (`dieWithParent`), and closes the
///   descriptors in `closing`, which it does not own.
///
/// The child must end with `_exit`, not `exit`: the C library's exit
/// handlers and stdio buffers belong to the parent. Call only while this
/// process has one thread: the child gets a copy of the calling thread
/// alone, and a lock held by any other thread would stay locked forever.
/// `parentRole` names the caller in the --trace line of the fork.
///
/// The corresponding C function is `fork`.
public func forkChild(signals: SignalPipe, parentRole: Role, closing: [FileDescriptor]) throws(Errno) -> pid_t
{
  let parentPid = getpid()
  let oldMask = SignalSet(signals.signals).block()
  let forkTime = Clock.now
  fflush(nil)
  let pid: pid_t
  do {
    pid = try valueOrErrno(retryOnInterrupt: false) { fork() }
  } catch {
    oldMask.setAsMask()
    throw error
  }
  if pid == 0 {
    signals.releaseInChild()
    oldMask.setAsMask()
    guard dieWithParent(parentPid: parentPid) else { _exit(1) }
    for descriptor in closing { descriptor.closeIgnoringErrors() }
    return 0
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
public func reapEndedChildren(role: Role) -> [(pid: pid_t, status: WaitStatus)] {
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
public func stopAndReap(_ pids: [pid_t], role: Role) {
  for pid in pids {
    Trace.event(role, "kill", "\(pid) SIGTERM")
    try? kill(pid: pid, signal: SIGTERM)
    try? kill(pid: pid, signal: SIGCONT)
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
public func kill(pid: pid_t, signal: CInt) throws(Errno) {
  try nothingOrErrno { Glibc.kill(pid, signal) }
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
