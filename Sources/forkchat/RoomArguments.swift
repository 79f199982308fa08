import ForkChat

// `forkchat room`: its help and its options, in the conventions of
// Arguments.swift.

let roomUsage =
  "forkchat room [<port>] [--bind <address>] [--max-clients <n>] [--log-size <MiB>] [--stall <seconds>] [--trace]"

let roomHelp = """
  OVERVIEW: Host a chat room: every line a client sends goes to all the others.

  Clients are any line-based TCP client: forkchat connect, nc, telnet, a
  Python script. Each gets a name (guest-N, or its own with /nick NAME) and
  sees who joins and leaves; commands: \(RoomCommand.all.map(\.usage).joined(separator: ", ")).

  One reader process per client, forked when it joins, and one hub process
  (this one) that keeps every line once in a log and sends each client the
  log from where it is, in one order for all. Runs until Ctrl-C, SIGTERM or
  SIGHUP.

  USAGE: \(roomUsage)

  ARGUMENTS:
    <port>                  The TCP port to listen on, 1 to 65535. (default: 8080)

  OPTIONS:
    --bind <address>        Listen on this local address only.
    --max-clients <n>       Clients in the room at once; the next one is told
                            "the room is full" and closed. (default: 1000)
    --log-size <MiB>        The most the room keeps of the lines not yet sent
                            to every client; a client a whole log behind is
                            dropped. Each client may send a burst of its
                            share of it (at most 64 KiB), then 8 KiB/s.
                            (default: \(RoomLimits.defaultLogMiB))
    --stall <seconds>       Drop a client that takes nothing for this long
                            while lines wait for it. (default: \(RoomLimits.defaultStallSeconds))
    --trace                 Print process events (accept, fork, join, leave,
                            signals, waitpid, exit ...) on standard error, with
                            times in ms.
    --version               Show the version.
    -h, --help              Show help information.

  """

/// Parses the arguments after "room".
func parseRoom(_ arguments: [String]) throws(UsageError) -> Command {
  var scan = ArgumentScanner(arguments, subcommand: "room")
  var options = RoomOptions()
  while let option = scan.nextOption() {
    switch option {
    case "-h", "--help": return .help(roomHelp)
    case "--version": return .version
    case "--trace":
      try scan.noValue()
      options.trace = true
    case "--bind": options.bindAddress = try scan.value()
    case "--max-clients": options.maxClients = try scan.number(in: 1...100_000)
    case "--log-size": options.logMiB = try scan.number(in: 1...4096)
    case "--stall": options.stallSeconds = try scan.number(in: 1...86_400)
    default:
      throw scan.fail("Unknown option '\(option)'.")
    }
  }
  let positionals = scan.positionals
  if positionals.count > 1 { throw scan.fail("Unexpected argument '\(positionals[1])'.") }
  if let text = positionals.first { options.port = try scan.port(text) }
  return .room(options)
}

extension ArgumentScanner {
  /// The option's value as a whole number in `range`, written in decimal
  /// digits only (no sign, no "0x", no fraction).
  mutating func number(in range: ClosedRange<Int>) throws(UsageError) -> Int {
    let text = try value()
    guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }), let number = Int(text),
      range.contains(number)
    else {
      throw fail(
        "Invalid value '\(text)' for '\(option)': expected a number from \(range.lowerBound) to \(range.upperBound)."
      )
    }
    return number
  }
}
