import ForkChat

// The command line, by hand, in the conventions of swift-argument-parser
// tools: OVERVIEW / USAGE / ARGUMENTS / OPTIONS help, "Error: ..." plus the
// usage line and exit 64 on a mistake. Options may stand before or after
// the positional arguments, as "--name value" or "--name=value"; "--" ends
// the options. What each subcommand takes is in OptionTable.swift; this
// file only reads the tables.

/// What the command line asks for.
enum Command: Equatable {
  case run(Subcommand, Options)
  case help(String)
  case version
}

/// A command-line mistake: the reason, and the subcommand it concerns.
struct UsageError: Error, Equatable {
  let reason: String
  let subcommand: Subcommand?

  /// What is printed on stderr before exiting with status 64.
  var text: String {
    let usageText = subcommand.map { usage(for: $0, label: "Usage: ") } ?? "Usage: forkchat <subcommand>"
    let helpCommand = subcommand.map { "forkchat \($0.rawValue) --help" } ?? "forkchat --help"
    return "Error: \(reason)\n\(usageText)\n  See '\(helpCommand)' for more information.\n"
  }
}

/// Parses the arguments after the program name.
func parse(_ words: [String]) throws(UsageError) -> Command {
  guard let first = words.first else {
    let names = Subcommand.allCases.map(\.rawValue)
    let list = names.dropLast().joined(separator: ", ") + " or " + names.last!
    throw UsageError(reason: "Missing subcommand: \(list).", subcommand: nil)
  }
  if first == "-h" || first == "--help" { return .help(mainHelp()) }
  if first == "--version" { return .version }
  if first == "help" {
    guard let name = words.dropFirst().first else { return .help(mainHelp()) }
    guard let subcommand = Subcommand(rawValue: name) else {
      throw UsageError(reason: "Unknown subcommand '\(name)'.", subcommand: nil)
    }
    return .help(help(for: subcommand))
  }
  guard let subcommand = Subcommand(rawValue: first) else {
    let what = first.hasPrefix("-") ? "option" : "subcommand"
    throw UsageError(reason: "Unknown \(what) '\(first)'.", subcommand: nil)
  }
  return try parse(subcommand, Array(words.dropFirst()))
}

/// Parses a subcommand's arguments with the tables: each option is applied
/// as it comes, the positional arguments once all are read.
func parse(_ subcommand: Subcommand, _ words: [String]) throws(UsageError) -> Command {
  func fail(_ reason: String) -> UsageError { UsageError(reason: reason, subcommand: subcommand) }
  var settings = Options()
  // An array, not a Set: a Set<String>'s storage is the first generic type
  // the runtime instantiates by name, and checking String: Hashable there
  // scans every protocol conformance of the static binary (1910 records,
  // the pages of .rodata they point into): 128 kB of a chat's resident
  // memory (docs/package.md). A dozen names at most: a linear search is free.
  var given: [String] = []
  var positionals: [String] = []
  var index = 0
  var optionsEnded = false
  while index < words.count {
    let word = words[index]
    index += 1
    // "-1" is no option (-4 and -6 are): a negative number, which the
    // argument then refuses with its range ("-1" as a port).
    // Its bytes: a minus and ASCII digits (String.count would run code of
    // the standard library no other step of a chat runs, docs/package.md).
    let digits = word.utf8.dropFirst()
    let negativeNumber =
      !digits.isEmpty && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
      && !options.contains { $0.name == word }
    // hasASCIIPrefix: String.hasPrefix without its slow path (System/TextPrefix.swift).
    if optionsEnded || !word.hasASCIIPrefix("-") || word == "-" || negativeNumber {
      positionals.append(word)
      continue
    }
    if word == "--" {
      optionsEnded = true
      continue
    }
    if word == "-h" || word == "--help" { return .help(help(for: subcommand)) }
    if word == "--version" { return .version }
    // "--name=value" or "--name value"
    var name = word
    var value: String? = nil
    if word.hasASCIIPrefix("--"), let equals = word.firstIndex(of: "=") {
      name = String(word[..<equals])
      value = String(word[word.index(after: equals)...])
    }
    guard let option = options.first(where: { $0.name == name && $0.subcommands.contains(subcommand) }) else {
      throw fail("Unknown option '\(name)'.")
    }
    if option.value == nil {
      if value != nil { throw fail("'\(name)' takes no value.") }
    } else if value == nil {
      guard index < words.count else { throw fail("Missing value for '\(name)'.") }
      value = words[index]
      index += 1
    }
    if let group = option.group {
      let members = options.filter { $0.group == group }.map(\.name)
      if members.contains(where: { $0 != name && given.contains($0) }) {
        throw fail("Cannot use \(members.joined(separator: " and ")) together.")
      }
    }
    given.append(name)
    do {
      try option.apply(&settings, value ?? "")
    } catch {
      throw fail(BadValue.message(for: error, about: "Invalid value '\(value ?? "")' for '\(name)'"))
    }
  }
  let expected = arguments.filter { $0.subcommands.contains(subcommand) }
  // A variadic last argument (check's <command>) takes every word left.
  if positionals.count > expected.count && expected.last?.variadic != true {
    throw fail("Unexpected argument '\(positionals[expected.count])'.")
  }
  for (position, argument) in expected.enumerated() {
    guard position < positionals.count else {
      if argument.required { throw fail("Missing expected argument '\(argument.name)'.") }
      break
    }
    for text in argument.variadic ? Array(positionals[position...]) : [positionals[position]] {
      do {
        try argument.apply(&settings, text)
      } catch {
        throw fail(
          BadValue.message(for: error, about: "Invalid \(argument.name.dropFirst().dropLast()) '\(text)'"))
      }
    }
  }
  if let reason = checkRules(settings, given: given) { throw fail(reason) }
  return .run(subcommand, settings)
}

// Help, made from the tables.

/// "forkchat listen [<port>] [--bind <address>] ... [-4|-6] ...".
/// The usage after `label` ("USAGE: ", "Usage: "), cut between its parts
/// so that no line is wider than 80 columns; the lines after the first
/// start under the first part after the subcommand, as
/// swift-argument-parser's do.
func usage(for subcommand: Subcommand, label: String) -> String {
  let parts = usageParts(for: subcommand)
  let margin = String(repeating: " ", count: label.count + parts[0].count + 1 + parts[1].count + 1)
  var lines = [label + parts[0] + " " + parts[1]]
  var width = lines[0].count
  for part in parts.dropFirst(2) {
    if width + 1 + part.count > 80 && width > margin.count {
      lines.append(margin + part)
      width = margin.count + part.count
    } else {
      lines[lines.count - 1] += " " + part
      width += 1 + part.count
    }
  }
  return lines.joined(separator: "\n")
}

private func usageParts(for subcommand: Subcommand) -> [String] {
  var parts = ["forkchat", subcommand.rawValue]
  for argument in arguments where argument.subcommands.contains(subcommand) && !argument.variadic {
    parts.append(argument.required ? argument.name : "[\(argument.name)]")
  }
  var groupsShown: Set<String> = []
  for option in options where option.subcommands.contains(subcommand) {
    if let group = option.group {
      guard groupsShown.insert(group).inserted else { continue }
      let names = options.filter { $0.group == group && $0.subcommands.contains(subcommand) }.map(\.name)
      parts.append("[\(names.joined(separator: "|"))]")
    } else {
      parts.append("[\(option.name)" + (option.value.map { " \($0)" } ?? "") + "]")
    }
  }
  for argument in arguments where argument.subcommands.contains(subcommand) && argument.variadic {
    parts.append("-- \(argument.name) ...")
  }
  return parts
}

func help(for subcommand: Subcommand) -> String {
  var text = "OVERVIEW: \(subcommand.abstract)\n\n"
  text += wrap(subcommand.discussion, indent: 0) + "\n"
  text += usage(for: subcommand, label: "USAGE: ") + "\n\n"
  text += "ARGUMENTS:\n"
  for argument in arguments where argument.subcommands.contains(subcommand) {
    text += helpRow(argument.name, argument.help)
  }
  text += "\nOPTIONS:\n"
  for option in options where option.subcommands.contains(subcommand) {
    text += helpRow(option.name + (option.value.map { " \($0)" } ?? ""), option.help)
  }
  return text + versionAndHelpRows + "\n"
}

func mainHelp() -> String {
  var text = """
    OVERVIEW: Chat over TCP from two terminals, one process per direction.

    After the connection is made, forkchat calls fork(): the child copies
    standard input to the socket, the parent copies the socket to standard
    output. The peer may be another forkchat, nc, socat or telnet.

    USAGE: forkchat <subcommand>

    OPTIONS:

    """
  text += versionAndHelpRows + "\nSUBCOMMANDS:\n"
  for subcommand in Subcommand.allCases { text += helpRow(subcommand.rawValue, subcommand.abstract) }
  return text + "\n  See 'forkchat help <subcommand>' for detailed help.\n\n"
}

private let versionAndHelpRows =
  helpRow("--version", "Show the version.") + helpRow("-h, --help", "Show help information.")

/// "  --name <value>          Help text, wrapped at 80 columns under
///                           itself."
private func helpRow(_ name: String, _ help: String) -> String {
  let column = 26
  let head = "  " + name
  let body = wrap(help, indent: column)
  if head.count + 2 > column { return head + "\n" + body }
  return head + String(repeating: " ", count: column - head.count) + body.dropFirst(column)
}

/// `text` in lines of at most 80 columns, each indented by `indent`
/// spaces; every line ends with "\n".
private func wrap(_ text: String, indent: Int) -> String {
  let margin = String(repeating: " ", count: indent)
  var lines: [String] = []
  var line = ""
  for word in text.split(separator: " ") {
    if !line.isEmpty && indent + line.count + 1 + word.count > 80 {
      lines.append(line)
      line = ""
    }
    line += (line.isEmpty ? "" : " ") + word
  }
  if !line.isEmpty { lines.append(line) }
  return lines.map { margin + $0 + "\n" }.joined()
}
