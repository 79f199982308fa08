import Glibc

// --trace: process-level events on stderr, one line each, so that a student
// can draw the timeline of a chat and of its teardown:
//
//   trace <ms> <pid> <role> <event> [details]
//
// <ms> counts milliseconds since the program started (the same clock in the
// children, which inherit the start time through fork); <role> says which
// process or thread of the session speaks (main, parent, child, sender,
// echo, room ...); <event> is one word (socket, bind, listen, accept,
// connect, fork, thread, eof, shutdown, signal, kill, waitpid, exit ...).
// docs/design.md lists every event.

/// When tracing started (CLOCK_MONOTONIC seconds), or nil when off.
///
/// nonisolated(unsafe): set once by `Trace.start()` in main, before any
/// thread or child process exists; only read afterwards (children read
/// their own copy).
nonisolated(unsafe) private var traceStart: Double? = nil

/// Who speaks in a trace line: a process, or a thread of one.
public enum Role: String, Sendable {
  /// The program itself, before and after a chat (and the threads mode's
  /// main thread, which receives).
  case main
  /// The fork mode: the parent receives, the child sends.
  case parent, child
  /// The threads mode's sending thread.
  case sender
  /// The poll and alternate modes' one thread.
  case poll, alternate
  /// A `listen --echo --keep` child, one per client.
  case echo
  /// The room: the hub, the process that forks readers, a client's reader.
  case room, spawner, reader
}

public enum Trace {
  /// Turns tracing on; times count from now.
  public static func start() { traceStart = Clock.now }

  public static var isOn: Bool { traceStart != nil }

  /// Writes one trace line if tracing is on. One write(2), so lines from
  /// several processes or threads never mix. `at` dates the event earlier
  /// than now: fork and pthread_create are dated when they are called, so
  /// that they come before anything the new process or thread prints,
  /// whichever of the two the scheduler runs first.
  ///
  /// `details` is an autoclosure: with tracing off (every chat but a
  /// --trace one) a call costs one test of `traceStart`, and the string a
  /// caller interpolates ("\(status.rawValue)") is never built, so no
  /// allocation happens on the copy loops' path.
  public static func event(
    _ role: Role, _ event: String, _ details: @autoclosure () -> String = "", at time: Double? = nil
  ) {
    guard let start = traceStart else { return }
    let micros = Int(((time ?? Clock.now) - start) * 1e6)
    let ms = "\(micros / 1000).\(String(1000 + micros % 1000).dropFirst())"
    let details = details()
    let line =
      "trace \(ms) \(getpid()) \(role.rawValue) \(event)" + (details.isEmpty ? "" : " \(details)") + "\n"
    try? FileDescriptor.standardError.writeAll(Array(line.utf8))
  }
}

/// The name of a signal as in kill -l, with the SIG prefix: "SIGCHLD".
public func signalAbbreviation(_ signal: CInt) -> String {
  switch signal {
  case SIGHUP: "SIGHUP"
  case SIGINT: "SIGINT"
  case SIGQUIT: "SIGQUIT"
  case SIGKILL: "SIGKILL"
  case SIGPIPE: "SIGPIPE"
  case SIGALRM: "SIGALRM"
  case SIGTERM: "SIGTERM"
  case SIGCHLD: "SIGCHLD"
  case SIGCONT: "SIGCONT"
  case SIGSTOP: "SIGSTOP"
  case SIGTSTP: "SIGTSTP"
  case SIGWINCH: "SIGWINCH"
  case SIGUSR1: "SIGUSR1"
  case SIGUSR2: "SIGUSR2"
  default: "SIG\(signal)"
  }
}
