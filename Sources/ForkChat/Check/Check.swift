import CForkChat
import Glibc

// forkchat check: the students' own chat programs, tried the way a person
// would try them, one named check at a time, each on a fresh start of the
// program (CheckedProgram.swift) with a time limit. forkchat plays the other
// end: the server for `check client`, the client for `check server`.
// Checks.swift holds the checks, CheckReport.swift the words.

/// Which program is checked.
public enum CheckRole: String, CaseIterable, Sendable {
  /// The student's client: forkchat listens.
  case client
  /// The student's server: forkchat connects.
  case server
}

/// The sheet's exercise the program answers.
public enum CheckExercise: String, CaseIterable, Sendable {
  /// Question 4: one process per direction.
  case fork
  /// Question 3: one line each way, in turn.
  case alternate
  /// The threads sheet: one thread per direction.
  case threads
}

/// What `forkchat check` was asked.
public struct CheckOptions: Equatable, Sendable {
  public var role = CheckRole.client
  public var exercise = CheckExercise.fork
  /// The port forkchat listens on (client) or connects to (server).
  public var port: UInt16 = 8080
  /// The address forkchat listens on (nil: every one) or connects to
  /// (nil: localhost).
  public var host: String? = nil
  /// The program's quit word ("exit", "fin"), tried as well as Ctrl-D.
  public var quitWord: String? = nil
  public var json = false
  /// The student's program and its arguments.
  public var command: [String] = []

  public init() {}
}

/// The outcome of one check.
struct CheckResult {
  let name: String
  let passed: Bool
  /// What happened, in plain words.
  let detail: String
  /// The likely cause, for a failure.
  var cause: String? = nil
  /// The sheet question the check belongs to.
  var question: String? = nil
  /// Not run, because the program does not start.
  var skipped = false
}

/// Runs every check on `options.command`, prints the results (the text
/// report a check at a time, as each ends; JSON at the end); returns the
/// exit status: 0 all passed, 1 one failed. Ctrl-C (or SIGTERM, SIGHUP)
/// stops the program under check, removes the cgroup, says how far it
/// got, and ends forkchat by that signal.
public func runCheck(_ options: CheckOptions) -> CInt {
  let words = CheckWords(french: localeIsFrench())
  // Orphans of the program's processes come to us, not to init: found in
  // its session and reaped (prctl(2), PR_SET_CHILD_SUBREAPER).
  _ = forkchat_set_child_subreaper()
  let interruption = CheckInterruption()
  let bound = ProcessBound.make()
  var checker = Checker(options: options, words: words, bound: bound, interruption: interruption)
  let output = FileDescriptor.standardOutput
  let results = checker.runAll { result in
    if !options.json { try? output.writeAll(Array(textEntry(result, words: words).utf8)) }
  }
  bound.remove()
  if let signal = interruption.signal {
    let count = checker.names().count
    notice(
      words.t(
        "check stopped by \(signalAbbreviation(signal)) after \(results.count) of \(count) checks",
        "vérification arrêtée par \(signalAbbreviation(signal)) après \(results.count) sur \(count)"))
    interruption.end(by: signal)
  }
  interruption.finish()
  let report =
    options.json ? jsonReport(results, options: options, bound: bound) : textSummary(results, words: words)
  try? output.writeAll(Array(report.utf8))
  return results.allSatisfy(\.passed) ? ExitStatus.success : ExitStatus.failure
}

/// Ctrl-C, SIGTERM or SIGHUP while a check runs: the self-pipe's handler
/// (Process/Signals.swift) writes the signal's number; `pump` watches the
/// pipe and gives up its wait, the check at hand ends at once, and no
/// other starts. (A signal ignored at start, as under nohup, stays
/// ignored.)
final class CheckInterruption {
  private let pipe: SignalPipe?
  /// The stop signal that came, if one did.
  private(set) var signal: CInt? = nil

  init() { pipe = try? SignalPipe.install(stopSignals) }

  /// The pipe's reading end, for poll(2) (-1: none).
  var descriptor: CInt { pipe?.readEnd.rawValue ?? -1 }

  /// Whether a stop signal has come (reads the pipe).
  func arrived() -> Bool {
    if signal == nil, let first = pipe?.drain().first { signal = first }
    return signal != nil
  }

  /// In a child after fork(): not our handlers, not our pipe.
  func releaseInChild() { pipe?.releaseInChild() }

  /// Ends forkchat by `signal`, as the shell expects of a job it stopped.
  func end(by signal: CInt) -> Never {
    guard let pipe else { exit(128 + signal) }
    pipe.die(of: signal, role: .main)
  }

  /// The checks are over: the default actions back; a stop signal that
  /// came during the last moments still ends forkchat.
  func finish() { pipe?.finish(role: .main) }
}

/// French when the locale that chooses messages (LC_ALL, then LC_MESSAGES,
/// then LANG: the first one set, locale(7)) is fr_*.
func localeIsFrench() -> Bool {
  for name in ["LC_ALL", "LC_MESSAGES", "LANG"] {
    if let value = getenv(name), value.pointee != 0 { return String(cString: value).hasPrefix("fr") }
  }
  return false
}
