import Glibc

// The words of `forkchat check`, in English or in French (the locale), and
// its two reports: a line per check for a person, JSON for a script.

struct CheckWords {
  let french: Bool

  /// The English or the French text.
  func t(_ english: String, _ français: String) -> String { french ? français : english }

  var notRun: String { t("not run: the program does not start", "non faite : le programme ne démarre pas") }
  var ctrlD: String { "Ctrl-D" }

  /// The sheet "Création de processus" question `number`; 0: the threads sheet.
  func question(_ number: Int) -> String {
    if number == 0 { return t("the threads sheet", "la fiche sur les threads") }
    return t(
      "sheet \"Création de processus\", question \(number)",
      "fiche « Création de processus », question \(number)")
  }

  var reuseQuestion: String {
    t(
      "sheet \"Création de processus\", question 1 (SO_REUSEADDR)",
      "fiche « Création de processus », question 1 (SO_REUSEADDR)")
  }

  /// "it ended after 0.1 s with status 1".
  func ended(_ program: CheckedProgram, _ end: ProgramEnd) -> String {
    let seconds = formatSeconds((((program.endedAt ?? Clock.now) - program.startedAt) * 10).rounded() / 10)
    switch end {
    case .exited(let status):
      return t(
        "it ended after \(seconds) s with status \(status)",
        "il s'est terminé au bout de \(seconds) s avec le statut \(status)")
    case .signaled(let signal):
      let name = signalAbbreviation(signal)
      return t(
        "it was killed by \(name) after \(seconds) s", "il a été tué par \(name) au bout de \(seconds) s")
    }
  }

  /// "; its error output: Traceback ... | ... | OSError: ..." (its first
  /// lines, and its last), or its screen's last lines if it wrote no error.
  func errors(_ program: CheckedProgram) -> String {
    var lines = textLines(program.errorOutput)
    var what = t("its error output", "sa sortie d'erreur")
    if lines.isEmpty {
      lines = Array(textLines(program.output).suffix(3))
      what = t("its screen", "son écran")
    }
    guard !lines.isEmpty else { return "" }
    var shown = Array(lines.prefix(4))
    if lines.count > 5 { shown.append("...") }
    if lines.count > 4 { shown.append(lines.last!) }
    return "; " + what + t(": ", " : ") + shown.joined(separator: " | ")
  }

  /// "; its screen: ..." for a program still running.
  func output(_ program: CheckedProgram) -> String {
    let lines = textLines(program.output).suffix(2)
    guard !lines.isEmpty else { return "" }
    return "; " + t("its screen: ", "son écran : ") + lines.joined(separator: " | ")
  }

  /// What to add to a failure when the program ended meanwhile.
  func state(_ program: CheckedProgram) -> String {
    guard let end = program.end else { return "" }
    return "; " + ended(program, end) + errors(program)
  }

  private func textLines(_ bytes: [UInt8]) -> [String] {
    String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
      .map { line in
        let text = String(line).filter { !$0.isASCII || ($0.asciiValue! >= 32 && $0.asciiValue! != 127) }
        return text.count > 160 ? String(text.prefix(160)) + "..." : text
      }
      .filter { !$0.allSatisfy(\.isWhitespace) }
  }
}

/// The text report: one entry per check, wrapped at 80 columns:
///   ok      starts: it connected to forkchat (pid 1234)
///   FAILED  full-duplex: a line sent by forkchat ... only after Enter.
///           Likely cause: ... Sheet: ...
/// (`runCheck` writes each as its check ends, then `textSummary`.)
func textEntry(_ result: CheckResult, words: CheckWords) -> String {
  var body = "\(result.name): \(result.detail)"
  if let cause = result.cause { body += words.t(". Likely cause: ", ". Cause probable : ") + cause }
  if let question = result.question { body += words.t(". See ", ". Voir ") + question }
  body += "."
  let mark = result.passed ? words.t("ok", "réussi") : result.skipped ? "-" : words.t("FAILED", "ÉCHEC")
  return wrapped(mark.padding(8) + body, indent: 8)
}

/// The text report's last line: "All 9 checks passed." or "7 of 9 …".
func textSummary(_ results: [CheckResult], words: CheckWords) -> String {
  let passed = results.filter(\.passed).count
  return passed == results.count
    ? words.t("All \(passed) checks passed.\n", "Les \(passed) vérifications sont réussies.\n")
    : words.t(
      "\(passed) of \(results.count) checks passed.\n",
      "\(passed) vérifications réussies sur \(results.count).\n")
}

extension String {
  fileprivate func padding(_ width: Int) -> String {
    count >= width ? self + " " : self + String(repeating: " ", count: width - count)
  }
}

/// `text` in lines of at most 80 columns, the ones after the first
/// indented by `indent` spaces. At most 80 bytes too: a French report's
/// accents take two bytes each, and tools that count bytes (GNU `fold`,
/// `cut -c`, a POSIX locale) would otherwise cut its lines again.
private func wrapped(_ text: String, indent: Int) -> String {
  var lines: [String] = []
  var line = ""
  for word in text.split(separator: " ", omittingEmptySubsequences: false) {
    let tooWide = line.count + 1 + word.count > 80 || line.utf8.count + 1 + word.utf8.count > 80
    if tooWide && !line.trimmingSpaces.isEmpty && line.count > indent {
      lines.append(line)
      line = String(repeating: " ", count: indent)
      if word.isEmpty { continue }
      line += word
      continue
    }
    line += (line.isEmpty ? "" : " ") + word
  }
  lines.append(line)
  return lines.map { $0 + "\n" }.joined()
}

extension String {
  fileprivate var trimmingSpaces: Substring { self.drop(while: { $0 == " " }) }
}

/// The results as one JSON object: {"role", "exercise", "command",
/// "bound", "passed", "checks": [{"name", "passed", "detail", "cause",
/// "question"}]}.
func jsonReport(_ results: [CheckResult], options: CheckOptions, bound: ProcessBound) -> String {
  func string(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          let hex = String(scalar.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }
  let checks = results.map { result in
    var fields = [
      "\"name\": \(string(result.name))", "\"passed\": \(result.passed)",
      "\"detail\": \(string(result.detail))",
    ]
    fields.append("\"cause\": " + (result.cause.map(string) ?? "null"))
    fields.append("\"question\": " + (result.question.map(string) ?? "null"))
    fields.append("\"skipped\": \(result.skipped)")
    return "    {" + fields.joined(separator: ", ") + "}"
  }
  return """
    {
      "role": \(string(options.role.rawValue)),
      "exercise": \(string(options.exercise.rawValue)),
      "command": [\(options.command.map(string).joined(separator: ", "))],
      "port": \(options.port),
      "bound": \(string(bound.description)),
      "passed": \(results.allSatisfy(\.passed)),
      "checks": [
    \(checks.joined(separator: ",\n"))
      ]
    }

    """
}
