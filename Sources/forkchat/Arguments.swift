import ForkChat

// The command line, by hand, in the conventions of swift-argument-parser
// tools: OVERVIEW / USAGE / ARGUMENTS / OPTIONS help, "Error: ..." plus the
// usage line and exit 64 on a mistake. Options may stand before or after
// the positional arguments; "--" ends the options.

let version = "forkchat 0.1.0"

/// What the command line asks for.
enum Command: Equatable {
  case listen(ListenOptions)
  case connect(ConnectOptions)
  case room(RoomOptions)
  case help(String)
  case version
}

/// A command-line mistake: the reason, and the usage of the subcommand.
struct UsageError: Error, Equatable {
  let reason: String
  let subcommand: String?

  /// What is printed on stderr before exiting with status 64.
  var text: String {
    let usage = subcommand.map { usageLine(for: $0) } ?? "forkchat <subcommand>"
    let helpCommand = subcommand.map { "forkchat \($0) --help" } ?? "forkchat --help"
    return "Error: \(reason)\nUsage: \(usage)\n  See '\(helpCommand)' for more information.\n"
  }
}

func usageLine(for subcommand: String) -> String {
  switch subcommand {
  case "room": roomUsage
  case "listen":
    "forkchat listen [<port>] [--bind <address>] [--keep] [--allow <address>] [--echo] [-4|-6] \(commonUsage)"
  default:
    "forkchat connect <host> [<port>] [--retry <seconds>] [--connect-timeout <seconds>] [-4|-6] \(commonUsage)"
  }
}

let commonUsage =
  "[--mode <mode>] [--first <turn>] [--quit <word>] [--linger <seconds>] [--dead-peer <seconds>] [--trace]"

let mainHelp = """
  OVERVIEW: Chat over TCP from two terminals, one process per direction.

  After the connection is made, forkchat calls fork(): the child copies
  standard input to the socket, the parent copies the socket to standard
  output. The peer may be another forkchat, nc, socat or telnet.

  USAGE: forkchat <subcommand>

  OPTIONS:
    --version               Show the version.
    -h, --help              Show help information.

  SUBCOMMANDS:
    listen                  Wait for a peer on a TCP port, then chat with it.
    connect                 Connect to a listening peer, then chat with it.
    room                    Host a chat room: every line goes to every other client.

    See 'forkchat help <subcommand>' for detailed help.

  """

let commonOptionsHelp = """
    --mode <mode>           How the two directions are driven: fork (a process
                            each), threads (a thread each), poll (one thread,
                            poll(2)) or alternate (one line each way in turn).
                            (default: fork)
    --first <turn>          alternate mode: send or receive first. (default:
                            send when connecting, receive when listening)
    --quit <word>           A line equal to <word>, typed on a terminal, is sent
                            and ends your side of the chat; '' disables it.
                            (default: exit)
    --linger <seconds>      After your input ends, wait at most this long for the
                            peer to close. (default: 2 on a terminal, no limit
                            otherwise)
    --dead-peer <seconds>   End the chat ("Connection timed out") when the peer
                            has not answered for this long, idle or busy (TCP
                            keepalive and user timeout); 0 never. (default: 60)
    --trace                 Print process events (socket, fork, signals, waitpid,
                            exit ...) on standard error, with times in ms.
    --version               Show the version.
    -h, --help              Show help information.
  """

let listenHelp = """
  OVERVIEW: Wait for a peer on a TCP port, then chat with it.

  Listens on every interface, IPv4 and IPv6, with SO_REUSEADDR. One chat at
  a time: the listening socket is closed once a peer is accepted, unless
  --keep is given.

  USAGE: \(usageLine(for: "listen"))

  ARGUMENTS:
    <port>                  The TCP port to listen on, 1 to 65535. (default: 8080)

  OPTIONS:
    --bind <address>        Listen on this local address only.
    --keep                  After a chat ends, wait for the next peer.
    --allow <address>       Accept only this peer address; close any other at once.
    --echo                  Send every byte received back to the client (the
                            course's ping-pong server); with --keep, one process
                            per client.
    -4                      Use IPv4 only.
    -6                      Use IPv6 only.
  \(commonOptionsHelp)

  """

let connectHelp = """
  OVERVIEW: Connect to a listening peer, then chat with it.

  Tries each address of <host> in turn (localhost works whether ::1 or
  127.0.0.1 answers).

  USAGE: \(usageLine(for: "connect"))

  ARGUMENTS:
    <host>                  The peer's name or address.
    <port>                  The peer's TCP port, 1 to 65535. (default: 8080)

  OPTIONS:
    --retry <seconds>       While the connection is refused or times out, try
                            again for up to this long (the server may not have
                            started yet).
    --connect-timeout <seconds>
                            Give up a connection try after this long; 0 leaves
                            the kernel's limit (about 2 min). (default: 10)
    -4                      Use IPv4 only.
    -6                      Use IPv6 only.
  \(commonOptionsHelp)

  """

/// Parses the arguments after the program name.
func parse(_ arguments: [String]) throws(UsageError) -> Command {
  guard let first = arguments.first else {
    throw UsageError(reason: "Missing subcommand: listen, connect or room.", subcommand: nil)
  }
  switch first {
  case "-h", "--help": return .help(mainHelp)
  case "--version": return .version
  case "help":
    switch arguments.dropFirst().first {
    case nil: return .help(mainHelp)
    case "listen": return .help(listenHelp)
    case "connect": return .help(connectHelp)
    case "room": return .help(roomHelp)
    case let other?: throw UsageError(reason: "Unknown subcommand '\(other)'.", subcommand: nil)
    }
  case "listen", "connect":
    return try parseSubcommand(first, Array(arguments.dropFirst()))
  case "room": return try parseRoom(Array(arguments.dropFirst()))
  default:
    let reason =
      first.hasPrefix("-") ? "Unknown option '\(first)'." : "Unknown subcommand '\(first)'."
    throw UsageError(reason: reason, subcommand: nil)
  }
}

/// Walks a subcommand's arguments in order: options, written "--name value"
/// or "--name=value", and positional arguments, which may come before or
/// after them; "--" ends the options. Reports mistakes as usage errors of
/// the subcommand.
struct ArgumentScanner {
  let arguments: [String]
  let subcommand: String
  private var index = 0
  private var optionsEnded = false
  /// The option being read, and the value written after "=", if any.
  private(set) var option = ""
  private var inlineValue: String? = nil
  /// The positional arguments met so far.
  private(set) var positionals: [String] = []

  init(_ arguments: [String], subcommand: String) {
    self.arguments = arguments
    self.subcommand = subcommand
  }

  func fail(_ reason: String) -> UsageError { UsageError(reason: reason, subcommand: subcommand) }

  /// The next option (collecting the positional arguments before it), or
  /// nil when the arguments are done.
  mutating func nextOption() -> String? {
    while index < arguments.count {
      let argument = arguments[index]
      index += 1
      if optionsEnded || !argument.hasPrefix("-") || argument == "-" {
        positionals.append(argument)
      } else if argument == "--" {
        optionsEnded = true
      } else {
        option = argument
        inlineValue = nil
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
          option = String(argument[..<equals])
          inlineValue = String(argument[argument.index(after: equals)...])
        }
        return option
      }
    }
    return nil
  }

  /// The option's value: after "=", or the next argument.
  mutating func value() throws(UsageError) -> String {
    if let inlineValue { return inlineValue }
    guard index < arguments.count else { throw fail("Missing value for '\(option)'.") }
    index += 1
    return arguments[index - 1]
  }

  /// For a flag: fails if a value was written after "=".
  func noValue() throws(UsageError) {
    if inlineValue != nil { throw fail("'\(option)' takes no value.") }
  }

  mutating func seconds() throws(UsageError) -> Double {
    let text = try value()
    guard let number = Double(text), number.isFinite, number >= 0, number < 1e9 else {
      throw fail("Invalid value '\(text)' for '\(option)': expected a number of seconds.")
    }
    return number
  }

  func port(_ text: String) throws(UsageError) -> UInt16 {
    guard text.allSatisfy(\.isASCII), let number = Int(text), (1...65535).contains(number) else {
      throw fail("Invalid port '\(text)': expected a number from 1 to 65535.")
    }
    return UInt16(number)
  }
}

private func parseSubcommand(_ name: String, _ arguments: [String]) throws(UsageError) -> Command {
  var scan = ArgumentScanner(arguments, subcommand: name)
  func fail(_ reason: String) -> UsageError { scan.fail(reason) }
  var family: AddressFamily? = nil
  var listen = ListenOptions()
  var connect = ConnectOptions()
  var session = SessionOptions()
  var trace = false

  while let option = scan.nextOption() {
    func setFamily(_ requested: AddressFamily) throws(UsageError) {
      try scan.noValue()
      if let family, family != requested { throw fail("Cannot use -4 and -6 together.") }
      family = requested
    }

    switch (option, name) {
    case ("-h", _), ("--help", _): return .help(name == "listen" ? listenHelp : connectHelp)
    case ("--version", _): return .version
    case ("-4", _): try setFamily(.inet4)
    case ("-6", _): try setFamily(.inet6)
    case ("--quit", _):
      let word = try scan.value()
      if word.contains("\n") || word.contains("\r") { throw fail("The quit word cannot contain a newline.") }
      session.quitWord = word.isEmpty ? nil : Array(word.utf8)
    case ("--linger", _): session.linger = try scan.seconds()
    case ("--dead-peer", _): session.deadPeer = try scan.seconds()
    case ("--mode", _):
      let text = try scan.value()
      guard let mode = Mode(rawValue: text) else {
        throw fail("Invalid value '\(text)' for '--mode': expected fork, threads, poll or alternate.")
      }
      session.mode = mode
    case ("--first", _):
      let text = try scan.value()
      guard let turn = Turn(rawValue: text) else {
        throw fail("Invalid value '\(text)' for '--first': expected send or receive.")
      }
      session.first = turn
    case ("--trace", _):
      try scan.noValue()
      trace = true
    case ("--echo", "listen"):
      try scan.noValue()
      listen.echo = true
    case ("--bind", "listen"): listen.bindAddress = try scan.value()
    case ("--allow", "listen"): listen.allow = try scan.value()
    case ("--keep", "listen"):
      try scan.noValue()
      listen.keep = true
    case ("--retry", "connect"): connect.retry = try scan.seconds()
    case ("--connect-timeout", "connect"): connect.connectTimeout = try scan.seconds()
    default:
      throw fail("Unknown option '\(option)'.")
    }
  }
  let positionals = scan.positionals

  if session.first != nil && session.mode != .alternate {
    throw fail("'--first' needs '--mode alternate'.")
  }
  if listen.echo && session.mode != .fork {
    throw fail("Cannot use --echo with --mode.")
  }
  if name == "listen" {
    if positionals.count > 1 { throw fail("Unexpected argument '\(positionals[1])'.") }
    if let text = positionals.first { listen.port = try scan.port(text) }
    listen.family = family ?? .any
    listen.trace = trace
    listen.session = session
    return .listen(listen)
  }
  guard let host = positionals.first else { throw fail("Missing expected argument '<host>'.") }
  if host.isEmpty { throw fail("The host cannot be empty.") }
  if positionals.count > 2 { throw fail("Unexpected argument '\(positionals[2])'.") }
  connect.host = host
  if positionals.count == 2 { connect.port = try scan.port(positionals[1]) }
  connect.family = family ?? .any
  connect.trace = trace
  connect.session = session
  return .connect(connect)
}
