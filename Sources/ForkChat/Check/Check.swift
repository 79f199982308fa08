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

/// Runs every check on `options.command`, prints the results; returns the
/// exit status: 0 all passed, 1 one failed.
public func runCheck(_ options: CheckOptions) -> CInt {
  let words = CheckWords(french: localeIsFrench())
  // Orphans of the program's processes come to us, not to init: found in
  // its session and reaped (prctl(2), PR_SET_CHILD_SUBREAPER).
  _ = forkchat_set_child_subreaper()
  let bound = ProcessBound.make()
  defer { bound.remove() }
  var checker = Checker(options: options, words: words, bound: bound)
  let results = checker.runAll()
  let report =
    options.json ? jsonReport(results, options: options, bound: bound) : textReport(results, words: words)
  try? FileDescriptor.standardOutput.writeAll(Array(report.utf8))
  return results.allSatisfy(\.passed) ? ExitStatus.success : ExitStatus.failure
}

/// French when the locale that chooses messages (LC_ALL, then LC_MESSAGES,
/// then LANG: the first one set, locale(7)) is fr_*.
func localeIsFrench() -> Bool {
  for name in ["LC_ALL", "LC_MESSAGES", "LANG"] {
    if let value = getenv(name), value.pointee != 0 { return String(cString: value).hasPrefix("fr") }
  }
  return false
}
