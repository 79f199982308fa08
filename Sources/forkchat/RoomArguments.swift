import ForkChat

// `forkchat room`: its help and its options, in the conventions of
// Arguments.swift.

let roomUsage = "forkchat room [<port>] [--bind <address>] [--max-clients <n>] [--trace]"

let roomHelp = """
  OVERVIEW: Host a chat room: every line a client sends goes to all the others.

  Clients are any line-based TCP client: forkchat connect, nc, telnet, a
  Python script. Each gets a name (guest-N, or its own with /nick NAME) and
  sees who joins and leaves. Commands: /nick NAME, /who, /me ACTION, /quit,
  /help. One reader process per client, forked when it joins, and one hub
  process (this one) that sends every line to every other client, in one
  order for all. Runs until Ctrl-C, SIGTERM or SIGHUP.

  USAGE: \(roomUsage)

  ARGUMENTS:
    <port>                  The TCP port to listen on, 1 to 65535. (default: 8080)

  OPTIONS:
    --bind <address>        Listen on this local address only.
    --max-clients <n>       Clients in the room at once; the next one is told
                            "the room is full" and closed. (default: 1000)
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
    case "--max-clients":
      let text = try scan.value()
      guard text.allSatisfy(\.isASCII), let number = Int(text), (1...100_000).contains(number) else {
        throw scan.fail("Invalid value '\(text)' for '--max-clients': expected a number from 1 to 100000.")
      }
      options.maxClients = number
    default:
      throw scan.fail("Unknown option '\(option)'.")
    }
  }
  let positionals = scan.positionals
  if positionals.count > 1 { throw scan.fail("Unexpected argument '\(positionals[1])'.") }
  if let text = positionals.first { options.port = try scan.port(text) }
  return .room(options)
}
