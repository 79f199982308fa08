import CForkChat
import Glibc

// forkchat check: one start of the student's program, as a lab terminal
// runs it. Its keyboard and screen are a pseudo-terminal (on a pipe Python
// buffers what it prints, and a correct program would look broken); its
// error output goes to a pipe of its own, kept for the report. As in the
// lab, where the shell leads the terminal's session and the program is a
// job in it, a small "leader" process (a forked forkchat that never execs)
// leads a new session whose controlling terminal is the pseudo-terminal,
// and the program runs in a process group of its own, in the foreground:
// when the program ends, nothing is hung up (SIGHUP goes to the foreground
// group only when the session leader ends), so a son it abandons stays
// alive, as it would in the lab, and is found. The leader waits for the
// program and passes its pid and wait status up a pipe.
// forkchat's end of the connection is `socket`; one loop (`pump`) reads the
// screen, the error output, the leader's pipe and the socket, writes what
// is queued for the socket, and reaps what ends.

/// How the program ended: a wait status, as the session's children's.
typealias ProgramEnd = WaitStatus

final class CheckedProgram {
  /// The program: its process group is numbered by it.
  let pid: pid_t
  /// The session leader, forkchat's child: the session is numbered by it.
  let leader: pid_t
  let bound: ProcessBound
  let interruption: CheckInterruption
  private var screen: FileDescriptor?
  private var errors: FileDescriptor?
  /// The leader's reports: the program's wait status.
  private var reports: FileDescriptor?
  /// Closed to let the leader end.
  private var hold: FileDescriptor?
  /// What the program showed on its terminal, and wrote on stderr.
  private(set) var output: [UInt8] = []
  private(set) var errorOutput: [UInt8] = []
  private(set) var end: ProgramEnd? = nil
  private(set) var endedAt: Double? = nil
  let startedAt: Double

  /// forkchat's end of the connection, once there is one.
  var socket: FileDescriptor? = nil
  /// What forkchat received from the program.
  private(set) var received: [UInt8] = []
  /// The program's FIN arrived (recv returned 0), or a reset.
  private(set) var peerClosed = false
  private(set) var peerReset = false
  private var outgoing: [UInt8] = []

  private init(
    pid: pid_t, leader: pid_t, bound: ProcessBound, interruption: CheckInterruption, screen: FileDescriptor,
    errors: FileDescriptor, reports: FileDescriptor, hold: FileDescriptor
  ) {
    self.pid = pid
    self.leader = leader
    self.bound = bound
    self.interruption = interruption
    self.screen = screen
    self.errors = errors
    self.reports = reports
    self.hold = hold
    startedAt = Clock.now
  }

  /// Why the program could not be started: exec's errno, or a failed call.
  struct StartFailure: Error {
    let reason: String
  }

  /// Starts `command` (looked up in PATH, as a shell would).
  static func start(
    _ command: [String], bound: ProcessBound, interruption: CheckInterruption
  ) throws(StartFailure) -> CheckedProgram {
    var controller: CInt = -1
    var terminal: CInt = -1
    guard forkchat_open_terminal(&controller, &terminal) == 0 else {
      throw StartFailure(reason: "openpty: \(Errno.current)")
    }
    let screen = FileDescriptor(rawValue: controller)
    let terminalSide = FileDescriptor(rawValue: terminal)
    // Pipes: stderr; "go", read by the leader until its end of file, so
    // that it forks the program only once it is in the cgroup; exec's
    // errno, close-on-exec, so that its end of file means exec succeeded;
    // the leader's reports (the program's pid, then its wait status); and
    // "hold", whose end of file lets the leader end.
    var pipes: [(read: FileDescriptor, write: FileDescriptor)] = []
    for _ in 0..<5 {
      guard let pipe = try? makePipe(flags: O_CLOEXEC) else {
        let error = Errno.current
        for descriptor in [screen, terminalSide] + pipes.flatMap({ [$0.read, $0.write] }) {
          descriptor.closeIgnoringErrors()
        }
        throw StartFailure(reason: "pipe2: \(error)")
      }
      pipes.append(pipe)
    }
    let (errorPipe, goPipe, execPipe, reportPipe, holdPipe) = (
      pipes[0], pipes[1], pipes[2], pipes[3], pipes[4]
    )
    // The arguments as C strings, made before fork: the children only call
    // async-signal-safe functions (signal-safety(7)) until exec.
    let arguments = command.map { strdup($0) } + [nil]
    defer { for argument in arguments { free(argument) } }
    let leader = fork()
    if leader == 0 {
      // Not forkchat check's handlers: the leader's SIGHUP (the terminal
      // closed at the end of a check) must not read as a Ctrl-C.
      interruption.releaseInChild()
      lead(
        terminal: terminalSide, errors: errorPipe.write, go: goPipe, exec: execPipe,
        reports: reportPipe.write,
        hold: holdPipe, arguments: arguments, bound: bound)
    }
    for descriptor in [
      terminalSide, errorPipe.write, goPipe.read, execPipe.write, reportPipe.write, holdPipe.read,
    ] {
      descriptor.closeIgnoringErrors()
    }
    guard leader > 0 else {
      let error = Errno.current
      for descriptor in [
        screen, errorPipe.read, goPipe.write, execPipe.read, reportPipe.read, holdPipe.write,
      ] {
        descriptor.closeIgnoringErrors()
      }
      throw StartFailure(reason: "fork: \(error)")
    }
    // In the cgroup before it forks: the program and all it starts are too.
    bound.admit(leader)
    goPipe.write.closeIgnoringErrors()
    var pid: pid_t = 0
    let pidCount = withUnsafeMutableBytes(of: &pid) { (try? reportPipe.read.readWaiting(into: $0)) ?? 0 }
    var failure: CInt = 0
    let count = withUnsafeMutableBytes(of: &failure) { (try? execPipe.read.readWaiting(into: $0)) ?? 0 }
    execPipe.read.closeIgnoringErrors()
    if pidCount != MemoryLayout<pid_t>.size || count == MemoryLayout<CInt>.size {
      holdPipe.write.closeIgnoringErrors()
      _ = try? waitForChild(leader)
      screen.closeIgnoringErrors()
      errorPipe.read.closeIgnoringErrors()
      reportPipe.read.closeIgnoringErrors()
      throw StartFailure(
        reason: "\(command[0]): \(Errno(rawValue: count == MemoryLayout<CInt>.size ? failure : EAGAIN))")
    }
    try? screen.setNonBlocking()
    try? errorPipe.read.setNonBlocking()
    try? reportPipe.read.setNonBlocking()
    return CheckedProgram(
      pid: pid, leader: leader, bound: bound, interruption: interruption, screen: screen,
      errors: errorPipe.read,
      reports: reportPipe.read,
      hold: holdPipe.write)
  }

  /// The leader, in forkchat's child: a new session with the terminal as
  /// its controlling terminal, the program forked into a foreground
  /// process group of its own, waited for, its status reported. Never
  /// returns.
  private static func lead(
    terminal: FileDescriptor, errors: FileDescriptor, go: (read: FileDescriptor, write: FileDescriptor),
    exec: (read: FileDescriptor, write: FileDescriptor), reports: FileDescriptor,
    hold: (read: FileDescriptor, write: FileDescriptor), arguments: [UnsafeMutablePointer<CChar>?],
    bound: ProcessBound
  ) -> Never {
    setsid()
    _ = forkchat_set_controlling_terminal(terminal.rawValue)
    // Our copies of the write ends first: else their end of file never comes.
    go.write.closeIgnoringErrors()
    hold.write.closeIgnoringErrors()
    var byte: UInt8 = 0
    _ = withUnsafeMutableBytes(of: &byte) { try? go.read.read(into: $0) }
    let program = fork()
    if program == 0 {
      // Its own process group, in the foreground of the terminal, as a
      // shell starts a job (SIGTTOU ignored meanwhile: tcsetpgrp from a
      // background group would stop us).
      setpgid(0, 0)
      signal(SIGTTOU, SIG_IGN)
      tcsetpgrp(terminal.rawValue, getpid())
      signal(SIGTTOU, SIG_DFL)
      _ = dup2(terminal.rawValue, 0)
      _ = dup2(terminal.rawValue, 1)
      _ = dup2(errors.rawValue, 2)
      // forkchat ignores SIGPIPE and SIGXFSZ, and an ignored signal stays
      // ignored across exec (signal(7)): the program gets the defaults.
      signal(SIGPIPE, SIG_DFL)
      signal(SIGXFSZ, SIG_DFL)
      var none = sigset_t()
      sigemptyset(&none)
      sigprocmask(SIG_SETMASK, &none, nil)
      bound.applyInChild()
      arguments.withUnsafeBufferPointer { pointers in
        _ = execvp(pointers[0]!, pointers.baseAddress!)
      }
      let failure = errno
      withUnsafeBytes(of: failure) { try? exec.write.writeAll($0) }
      _exit(127)
    }
    exec.write.closeIgnoringErrors()
    withUnsafeBytes(of: program) { try? reports.writeAll($0) }
    if program > 0 {
      setpgid(program, program)
      // The raw status: forkchat decodes it (WaitStatus(rawValue:)).
      var status: CInt = 0
      while waitpid(program, &status, 0) == -1 && errno == EINTR {}
      withUnsafeBytes(of: status) { try? reports.writeAll($0) }
    }
    _ = withUnsafeMutableBytes(of: &byte) { try? hold.read.read(into: $0) }
    _exit(0)
  }

  var isRunning: Bool { end == nil }

  /// Types on the program's keyboard (the terminal's line discipline makes
  /// lines of it; "\u{4}" at the start of a line is Ctrl-D, the end of file).
  func type(_ text: String) {
    guard let screen else { return }
    try? screen.writeAll(Array(text.utf8))
  }

  /// Queues bytes for the socket; `pump` sends them.
  func send(_ bytes: [UInt8]) { outgoing += bytes }

  /// Waits at most `seconds` (reading everything meanwhile) until
  /// `condition` holds; returns whether it did. Returns false at once
  /// after a stop signal (`interruption`), unless not `interruptible`.
  @discardableResult
  func pump(
    for seconds: Double, interruptible: Bool = true,
    until condition: (CheckedProgram) -> Bool = { _ in false }
  ) -> Bool {
    let deadline = Clock.now + seconds
    while true {
      reap()
      if condition(self) { return true }
      let now = Clock.now
      if now >= deadline || (interruptible && interruption.arrived()) { return false }
      var entries: [pollfd] = []
      for descriptor in [screen, errors, reports] {
        entries.append(pollfd(fd: descriptor?.rawValue ?? -1, events: Int16(POLLIN), revents: 0))
      }
      var socketEvents = peerClosed ? 0 : POLLIN
      if !outgoing.isEmpty { socketEvents |= POLLOUT }
      entries.append(pollfd(fd: socket?.rawValue ?? -1, events: Int16(socketEvents), revents: 0))
      entries.append(pollfd(fd: interruption.descriptor, events: Int16(POLLIN), revents: 0))
      // 20 ms at most: the end of the program is seen by waitpid, not poll.
      _ = try? poll(&entries, timeout: CInt(min(20, max(1, (deadline - now) * 1000))))
      if entries[0].revents != 0 { drain(&screen, into: &output) }
      if entries[1].revents != 0 { drain(&errors, into: &errorOutput) }
      if entries[2].revents != 0 { readReport() }
      if entries[3].revents != 0 { exchange(entries[3].revents) }
    }
  }

  /// Reads what a descriptor has; closes it at its end (or EIO: every
  /// copy of the terminal's other side is closed).
  private func drain(_ descriptor: inout FileDescriptor?, into buffer: inout [UInt8]) {
    guard let file = descriptor else { return }
    var chunk = [UInt8](repeating: 0, count: 65536)
    reading: while true {
      let outcome = chunk.withUnsafeMutableBytes { bytes in
        Result { () throws(Errno) in try file.read(into: bytes) }
      }
      switch outcome {
      case .success(0): break reading
      case .success(let count): buffer += chunk[..<count]
      case .failure(.wouldBlock): return
      case .failure: break reading
      }
    }
    file.closeIgnoringErrors()
    descriptor = nil
  }

  /// Receives and sends what the socket allows. The socket is non-blocking
  /// (Checks.begin) and SIGPIPE is ignored (main.swift): flags 0 (naming
  /// MSG_DONTWAIT in this file made Swift 6.3.1 lose the constant in
  /// Room/RoomHub.swift, which also names it: "cannot find in scope").
  private func exchange(_ events: Int16) {
    guard let socket else { return }
    if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 && !peerClosed {
      var chunk = [UInt8](repeating: 0, count: 65536)
      let outcome = chunk.withUnsafeMutableBytes { bytes in
        Result { () throws(Errno) in try socket.receive(into: bytes, flags: 0) }
      }
      switch outcome {
      case .success(0): peerClosed = true
      case .success(let count): received += chunk[..<count]
      case .failure(.wouldBlock): break
      case .failure:
        peerClosed = true
        peerReset = true
        outgoing = []
      }
    }
    if events & Int16(POLLOUT) != 0 && !outgoing.isEmpty {
      let sent = outgoing.withUnsafeBytes { bytes in
        (try? socket.send(bytes, flags: 0)) ?? -1
      }
      if sent > 0 { outgoing.removeFirst(sent) } else if sent < 0 && errno != EAGAIN { outgoing = [] }
    }
  }

  /// The program's wait status, from the leader.
  private func readReport() {
    guard let reports else { return }
    var status: CInt = 0
    let count = withUnsafeMutableBytes(of: &status) { (try? reports.read(into: $0)) ?? -1 }
    if count == MemoryLayout<CInt>.size {
      end = WaitStatus(rawValue: status)
      endedAt = Clock.now
    }
    if count != -1 || errno != EAGAIN {
      reports.closeIgnoringErrors()
      self.reports = nil
    }
  }

  /// Reaps every child of forkchat check that has ended (the leader, and
  /// the orphans of the program's processes, reparented to us as the
  /// subreaper).
  func reap() {
    var status: CInt = 0
    while waitpid(-1, &status, WNOHANG) > 0 {}
  }

  /// Its processes still alive (zombies not counted) other than the
  /// program itself.
  func otherLiveProcesses() -> [ProcessEntry] {
    processesOfProgram(pid, leader: leader, bound: bound).filter { $0.pid != pid && !$0.isZombie }
  }

  /// Shows `token` on its terminal since `offset` of its output.
  func shows(_ token: [UInt8], since offset: Int = 0) -> Bool {
    contains(output[min(offset, output.count)...], token)
  }

  /// forkchat received `token` (since `offset`).
  func sent(_ token: [UInt8], since offset: Int = 0) -> Bool {
    contains(received[min(offset, received.count)...], token)
  }

  /// Closes forkchat's end of the connection: a FIN, or with `reset` a RST
  /// (SO_LINGER 0), which leaves no TIME_WAIT on either side, so that a
  /// server without SO_REUSEADDR can be started again for the next check.
  func closeConnection(reset: Bool = false) {
    guard let socket else { return }
    if reset { try? socket.resetOnClose() }
    socket.closeIgnoringErrors()
    self.socket = nil
  }

  /// Ends the program and everything it started: SIGTERM to each of its
  /// processes, SIGKILL to those left after a second, until none is left;
  /// then lets the leader end, and reaps them all.
  func stop() {
    closeConnection(reset: true)
    var signalNumber = SIGTERM
    let started = Clock.now
    while true {
      reap()
      let left = processesOfProgram(pid, leader: leader, bound: bound).filter { !$0.isZombie }
      if left.isEmpty && end != nil { break }
      if Clock.now - started > 1 { signalNumber = SIGKILL }
      kill(-pid, signalNumber)
      for process in left { kill(process.pid, signalNumber) }
      if Clock.now - started > 10 { break }
      pump(for: 0.02, interruptible: false)
    }
    hold?.closeIgnoringErrors()
    hold = nil
    _ = try? waitForChild(leader)
    reap()
    drain(&screen, into: &output)
    drain(&errors, into: &errorOutput)
    for descriptor in [screen, errors, reports] { descriptor?.closeIgnoringErrors() }
    screen = nil
    errors = nil
    reports = nil
  }
}

/// Whether `haystack` holds `needle` as a contiguous run.
func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
  guard !needle.isEmpty else { return true }
  guard haystack.count >= needle.count else { return false }
  var index = haystack.startIndex
  let last = haystack.endIndex - needle.count
  while index <= last {
    if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) {
      return true
    }
    index += 1
  }
  return false
}
