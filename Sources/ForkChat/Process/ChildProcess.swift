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

/// The exit statuses of forkchat's children, named once: a child ends
/// with `exit()`, its parent reads the status back from waitpid(2) (as
/// `WaitStatus.childExit`). Each means one thing.
public enum ChildExit: CInt, Sendable {
  /// Its work is done: the fork session's child sent all of its input,
  /// FIN included; an echo child's client has closed.
  case done = 0
  /// It failed, and said why on stderr.
  case failed = 1
  /// Its write failed because the kernel gave up on the peer: the parent
  /// says so, once, since it may have met the same end on its side first
  /// (`Teardown.peerVanished`).
  case peerVanished = 2
  /// Its parent died before the child could ask to die with it
  /// (`dieWithParent`): nobody is left to work for.
  case parentGone = 3

  /// Ends the child with this status: _exit(2), not exit(3), whose exit
  /// handlers and stdio buffers belong to the parent.
  public func exit() -> Never { _exit(rawValue) }
}

extension WaitStatus {
  /// The child's exit status as forkchat names it; nil if it was killed
  /// or exited with a status forkchat does not use.
  public var childExit: ChildExit? {
    if case .exited(let code) = self { ChildExit(rawValue: code) } else { nil }
  }
}

/// Creates a child process, a copy of this one: returns 0 in the child and
/// the child's pid in the parent, as fork() does. It is the one place
/// forkchat forks, and it does first what every one of its children needs
/// (the callers branch on `pid == 0`, as in Stevens' UNP):
///
/// - Standard output is flushed before fork(), or the child would inherit
///   (and later write again) whatever the C library still buffers.
/// - The signals `signals` handles stay blocked across fork(), for the
///   child's sake: it restores the actions the program started with
///   (`releaseInChild`) *before* it unblocks them, so a pending Ctrl-C
///   kills it instead of running the parent's handler, which writes into
///   the parent's self-pipe; then it closes that pipe. (The parent misses
///   no SIGCHLD either way: the byte waits in the pipe until its loop
///   reads it, and waitpid(2) finds the child then.)
/// - The child dies with its parent (`dieWithParent`), or, with
///   `restoring`, restores the terminal and then ends when its parent dies
///   (`TerminalMode.restoreWhenParentDies`). It closes the descriptors in
///   `closing`, which it does not own; a standard one (0, 1, 2) is
///   replaced by /dev/null instead, so that no descriptor the child opens
///   later takes its number (and gets written to as if it were stdout).
///
/// The child must end with `_exit`, not `exit`: the C library's exit
/// handlers and stdio buffers belong to the parent. Call only while this
/// process has one thread: the child gets a copy of the calling thread
/// alone, and a lock held by any other thread would stay locked forever.
/// `parentRole` names the caller in the --trace line of the fork. The
/// call is `_Fork`: fork without glibc's handlers and locks, which a
/// process with one thread does not need (Fork.c).
///
/// The corresponding C function is `fork`.
func forkChild(
  signals: SignalPipe, parentRole: Role, closing: [FileDescriptor], restoring terminal: TerminalMode? = nil
) throws(Errno) -> pid_t {
  let parentPid = getpid()
  let oldMask = SignalSet(signals.signals).block()
  let forkTime = Clock.now
  fflush(nil)
  let pid: pid_t
  do {
    pid = try valueOrErrno(retryOnInterrupt: false) { forkchat_fork() }
  } catch {
    oldMask.setAsMask()
    throw error
  }
  if pid == 0 {
    signals.releaseInChild()
    oldMask.setAsMask()
    if let terminal {
      terminal.restoreWhenParentDies(parentPid: parentPid)
    } else if !dieWithParent(parentPid: parentPid) {
      ChildExit.parentGone.exit()
    }
    for descriptor in closing { descriptor.closeOrReplaceStandard() }
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

/// How long a child has, after SIGTERM, to end before it gets SIGKILL.
public let stopGrace = 1.0

/// Stops children and reaps them: SIGTERM to each, and SIGCONT after it
/// (a child stopped by Ctrl-Z gets its SIGTERM only once continued), then
/// a wait of at most `grace` seconds for them to end, woken by SIGCHLD on
/// `signals` (without a pipe, by polling every 10 ms); a child still
/// there then gets SIGKILL, which it can neither ignore nor block, and is
/// reaped. Like swift-subprocess's teardown: a parent never waits forever
/// on a child that ignores SIGTERM. A stop request that comes meanwhile is
/// kept in `signals` for the caller's next `drain`. `role` names the
/// caller in --trace lines. Returns how each child ended.
@discardableResult
public func stopAndReap(
  _ pids: [pid_t], role: Role, signals: SignalPipe? = nil, grace: Double = stopGrace
) -> [pid_t: WaitStatus] {
  var ended: [pid_t: WaitStatus] = [:]
  for pid in pids {
    Trace.event(role, "kill", "\(pid) SIGTERM")
    try? kill(pid: pid, signal: SIGTERM)
    try? kill(pid: pid, signal: SIGCONT)
  }
  var running = pids
  let deadline = Clock.now + grace
  while true {
    running.removeAll { pid in
      let status: WaitStatus?
      do {
        status = try waitForChild(pid, noHang: true)
      } catch {
        return true  // not our child (any more): nothing to wait for
      }
      guard let status else { return false }
      Trace.event(role, "waitpid", "\(pid) \(status.traceDescription)")
      ended[pid] = status
      return true
    }
    guard !running.isEmpty, Clock.now < deadline else { break }
    if let signals {
      var entry = [pollfd(fd: signals.readEnd.rawValue, events: Int16(POLLIN), revents: 0)]
      _ = try? poll(&entry, timeout: Clock.pollTimeout(until: deadline))
      signals.hold(signals.drain().filter { $0 != SIGCHLD })
    } else {
      var none: [pollfd] = []
      _ = try? poll(&none, timeout: min(10, Clock.pollTimeout(until: deadline)))
    }
  }
  for pid in running {
    Trace.event(role, "kill", "\(pid) SIGKILL")
    try? kill(pid: pid, signal: SIGKILL)
    if let status = (try? waitForChild(pid)) ?? nil {
      Trace.event(role, "waitpid", "\(pid) \(status.traceDescription)")
      ended[pid] = status
    }
  }
  return ended
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
