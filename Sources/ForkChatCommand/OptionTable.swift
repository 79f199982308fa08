import ForkChat

// Every subcommand, argument and option of forkchat, once: how each is
// written, what it takes, which subcommands take it, its help, and what it
// sets. The usage lines, the help pages and the parser (Arguments.swift)
// are all made from these tables, in their order.

let version = "forkchat 0.1.0"

/// The subcommands.
enum Subcommand: String, CaseIterable {
  case listen, connect, room, check

  /// One line, for the main help and the OVERVIEW.
  var abstract: String {
    switch self {
    case .listen: "Wait for a peer on a TCP port, then chat with it."
    case .connect: "Connect to a listening peer, then chat with it."
    case .room: "Host a chat room: every line a client sends goes to all the others."
    case .check: "Check a student's chat program: forkchat plays the other end."
    }
  }

  /// The paragraph under the OVERVIEW.
  var discussion: String {
    switch self {
    case .listen:
      """
      Listens on every interface, IPv4 and IPv6, with SO_REUSEADDR. One chat at \
      a time: the listening socket is closed once a peer is accepted, unless \
      --keep is given.
      """
    case .connect:
      """
      Tries each address of <host> in turn (localhost works whether ::1 or \
      127.0.0.1 answers).
      """
    case .room:
      """
      Clients are any line-based TCP client: forkchat connect, nc, telnet, a \
      Python script. Each gets a name (guest-N, or its own with /nick NAME) and \
      sees who joins and leaves; commands: \
      \(RoomCommand.all.map(\.usage).joined(separator: ", ")). One reader \
      process per client, forked when it joins, and one hub process (this one) \
      that keeps every line once in a log and sends each client the log from \
      where it is, in one order for all. Runs until Ctrl-C, SIGTERM or SIGHUP.
      """
    case .check:
      """
      Runs <command> (the student's client, or server) on a pseudo-terminal, \
      each check on a fresh start, and types into it as a person would: \
      starts, exchange, full-duplex, half-close, quit-word (with --quit), \
      no-zombie, peer-ends, no-newline, large-message, restart (server). One \
      line per check, as each ends: passed, or what happened, the likely cause and the \
      sheet question. Exit status 0 when all passed, 1 otherwise. French with \
      LANG=fr_FR.UTF-8.
      """
    }
  }
}

/// A positional argument.
struct Argument: Sendable {
  let name: String
  let subcommands: [Subcommand]
  let required: Bool
  let help: String
  /// Takes every word left (applied once for each).
  var variadic = false
  /// Sets what the argument says; throws a `BadValue`.
  let apply: @Sendable (inout Options, String) throws -> Void
}

let arguments: [Argument] = [
  Argument(name: "<host>", subcommands: [.connect], required: true, help: "The peer's name or address.") {
    guard !$1.isEmpty else { throw BadValue.reason("The host cannot be empty.") }
    $0.host = $1
  },
  Argument(
    name: "<port>", subcommands: [.listen, .room], required: false,
    help: "The TCP port to listen on, 1 to 65535. (default: 8080)"
  ) { $0.port = try port($1) },
  Argument(
    name: "<port>", subcommands: [.connect], required: false,
    help: "The peer's TCP port, 1 to 65535. (default: 8080)"
  ) { $0.port = try port($1) },
  Argument(
    name: "<role>", subcommands: [.check], required: true,
    help: "client (forkchat is the server) or server (forkchat connects to it)."
  ) { $0.check.role = try choice($1) },
  Argument(
    name: "<command>", subcommands: [.check], required: true,
    help: "After --: the student's program and its arguments (python3 client.py).", variadic: true
  ) { $0.check.command.append($1) },
]

/// An option: `--name <value>` (or `--name=<value>`), or a flag.
struct Option: Sendable {
  let name: String
  /// The value's placeholder ("<seconds>"); nil for a flag.
  let value: String?
  let subcommands: [Subcommand]
  let help: String
  /// Options of one group exclude each other, and show as [-4|-6].
  var group: String? = nil
  /// Sets what the option says (a flag gets ""); throws a `BadValue`.
  let apply: @Sendable (inout Options, String) throws -> Void
}

private let chat: [Subcommand] = [.listen, .connect]
private let every = Subcommand.allCases

let options: [Option] = [
  Option(
    name: "--bind", value: "<address>", subcommands: [.listen, .room],
    help: "Listen on this local address only."
  ) { $0.bindAddress = $1 },
  Option(
    name: "--keep", value: nil, subcommands: [.listen], help: "After a chat ends, wait for the next peer."
  ) {
    options, _ in options.keep = true
  },
  Option(
    name: "--allow", value: "<address>", subcommands: [.listen],
    help: "Accept only this peer address; close any other at once."
  ) { $0.allow = $1 },
  Option(
    name: "--echo", value: nil, subcommands: [.listen],
    help: """
      Send every byte received back to the client (the course's ping-pong \
      server); with --keep, one process per client.
      """
  ) { options, _ in options.echo = true },
  Option(
    name: "--retry", value: "<seconds>", subcommands: [.connect],
    help: """
      While the connection is refused or times out, try again for up to this \
      long (the server may not have started yet).
      """
  ) { $0.retry = try seconds($1) },
  Option(
    name: "--connect-timeout", value: "<seconds>", subcommands: [.connect],
    help: """
      Give up a connection try after this long; 0 leaves the kernel's limit \
      (about 2 min). (default: \(formatSeconds(Options.defaultConnectTimeout)))
      """
  ) { $0.connectTimeout = try seconds($1) },
  Option(
    name: "--max-clients", value: "<n>", subcommands: [.room],
    help: "Clients in the room at once; the next one is told \"the room is full\" and closed. (default: 1000)"
  ) { $0.room.maxClients = try number($1, in: 1...100_000) },
  Option(
    name: "--log-size", value: "<MiB>", subcommands: [.room],
    help: """
      The most the room keeps of the lines not yet sent to every client; a \
      client a whole log behind is dropped. Each client may send a burst of its \
      share of it (at most 64 KiB), then 8 KiB/s. (default: \(RoomLimits.defaultLogMiB))
      """
  ) { $0.room.logMiB = try number($1, in: 1...4096) },
  Option(
    name: "--stall", value: "<seconds>", subcommands: [.room],
    help: """
      Drop a client that takes nothing for this long while lines wait for it. \
      (default: \(RoomLimits.defaultStallSeconds))
      """
  ) { $0.room.stallSeconds = try number($1, in: 1...86_400) },
  Option(
    name: "--max-per-host", value: "<n>", subcommands: [.room],
    help: """
      Clients from one address at once; the next one is told "too many \
      connections" and closed. (default: \(RoomLimits.defaultMaxPerHost), the room's \
      own machine unlimited)
      """
  ) { $0.room.maxPerHost = try number($1, in: 1...100_000) },
  Option(
    name: "--silent", value: "<seconds>", subcommands: [.room],
    help: """
      When the room is full, a client that has sent nothing for this long \
      since it came gives its place to the newcomer. (default: \(RoomLimits.defaultSilentSeconds))
      """
  ) { $0.room.silentSeconds = try number($1, in: 1...86_400) },
  Option(
    name: "--dead-peer", value: "<seconds>", subcommands: [.room],
    help: """
      Drop a client that has not answered for this long, idle or busy (its \
      machine asleep, its network gone: TCP keepalive and user timeout); 0 \
      never. (default: \(formatSeconds(SessionOptions.defaultDeadPeer)))
      """
  ) { $0.room.deadPeerSeconds = try seconds($1) },
  Option(name: "-4", value: nil, subcommands: chat, help: "Use IPv4 only.", group: "family") { options, _ in
    options.family = .inet4
  },
  Option(name: "-6", value: nil, subcommands: chat, help: "Use IPv6 only.", group: "family") { options, _ in
    options.family = .inet6
  },
  Option(
    name: "--mode", value: "<mode>", subcommands: chat,
    help: """
      How the two directions are driven: fork (a process each), threads (a \
      thread each), poll (one thread, poll(2)) or alternate (one line each way \
      in turn). (default: fork)
      """
  ) { $0.session.mode = try choice($1) },
  Option(
    name: "--first", value: "<turn>", subcommands: chat,
    help: "alternate mode: send or receive first. (default: send when connecting, receive when listening)"
  ) { $0.session.first = try choice($1) as Turn },
  Option(
    name: "--quit", value: "<word>", subcommands: chat,
    help: """
      A line equal to <word>, typed on a terminal, is sent and ends your side \
      of the chat; '' disables it. (default: exit)
      """
  ) {
    guard !$1.contains("\n") && !$1.contains("\r") else {
      throw BadValue.reason("The quit word cannot contain a newline.")
    }
    $0.session.quitWord = $1.isEmpty ? nil : Array($1.utf8)
  },
  Option(
    name: "--line-end", value: "<end>", subcommands: chat,
    help: """
      How a line typed on a terminal ends on the wire: lf, crlf (as nc -C) or \
      none (as the course's Python scripts send it); piped input is sent as it \
      is. (default: lf)
      """
  ) { $0.session.lineEnd = try choice($1) },
  Option(
    name: "--linger", value: "<seconds>", subcommands: chat,
    help:
      "After your input ends, wait at most this long for the peer to close. (default: 2 on a terminal, no limit otherwise)"
  ) { $0.session.linger = try seconds($1) },
  Option(
    name: "--dead-peer", value: "<seconds>", subcommands: chat,
    help: """
      End the chat ("Connection timed out") when the peer has not answered for \
      this long, idle or busy (TCP keepalive and user timeout); 0 never. \
      (default: \(formatSeconds(SessionOptions.defaultDeadPeer)))
      """
  ) { $0.session.deadPeer = try seconds($1) },
  Option(
    name: "--plain", value: nil, subcommands: chat,
    help: """
      On a terminal, chat line by line (the terminal edits the line, '< ' marks \
      the peer) instead of the chat screen.
      """
  ) { options, _ in options.session.plain = true },
  Option(
    name: "--trace", value: nil, subcommands: chat,
    help:
      "Print process events (socket, fork, signals, waitpid, exit ...) on standard error, with times in ms."
  ) { options, _ in options.trace = true },
  Option(
    name: "--trace", value: nil, subcommands: [.room],
    help: """
      Print process events (accept, fork, join, leave, signals, waitpid, exit \
      ...) on standard error, with times in ms.
      """
  ) { options, _ in options.trace = true },
  Option(
    name: "--port", value: "<port>", subcommands: [.check],
    help: "The port forkchat listens on (client) or connects to (server). (default: 8080)"
  ) { $0.check.port = try port($1) },
  Option(
    name: "--host", value: "<host>", subcommands: [.check],
    help: """
      The address forkchat listens on (client; default: every one) or \
      connects to (server; default: localhost).
      """
  ) { $0.check.host = $1 },
  Option(
    name: "--exercise", value: "<exercise>", subcommands: [.check],
    help: "The program's exercise: fork (question 4), alternate (question 3) or threads. (default: fork)"
  ) { $0.check.exercise = try choice($1) },
  Option(
    name: "--quit", value: "<word>", subcommands: [.check],
    help: "The program's quit word (exit, fin): checked as well as Ctrl-D."
  ) {
    guard !$1.isEmpty && !$1.contains("\n") && !$1.contains("\r") else {
      throw BadValue.reason("The quit word cannot be empty or contain a newline.")
    }
    $0.check.quitWord = $1
  },
  Option(
    name: "--json", value: nil, subcommands: [.check],
    help: "Print the results as JSON, one object per check."
  ) { options, _ in options.check.json = true },
]

/// Rules between options, checked once all of them are read: the reason
/// for a usage error, or nil. `given` holds the options written.
func checkRules(_ options: Options, given: [String]) -> String? {
  // The echo server sends back what it receives, one fork per client with
  // --keep: nothing of the chat applies to it.
  if options.echo && options.session.mode != .fork { return "Cannot use --echo with --mode." }
  if options.echo, let other = ["--first", "--quit", "--line-end", "--linger"].first(where: given.contains) {
    return "Cannot use --echo with \(other)."
  }
  if given.contains("--first") && options.session.mode != .alternate {
    return "'--first' needs '--mode alternate'."
  }
  return nil
}

// Values. One rule for numbers, whatever the option: decimal digits only
// ("080" is 80; "+80", " 80", "0x50" and "1e3" are not numbers), and for
// seconds an optional fraction after a point ("0.5").

/// Why a value is not what its option or argument expects.
enum BadValue: Error {
  /// What it expects: "Invalid value 'x' for '--linger': expected a
  /// number of seconds."
  case expected(String)
  /// The whole reason: "The host cannot be empty."
  case reason(String)

  /// The reason for a usage error, from what an `apply` threw about `what`
  /// ("Invalid value 'x' for '--linger'").
  static func message(for error: any Error, about what: String) -> String {
    switch error as? BadValue {
    case .expected(let expected): "\(what): expected \(expected)."
    case .reason(let reason): reason
    case nil: "\(what): \(error)"
    }
  }
}

/// A whole number in `range`, written in decimal digits.
func number(_ text: String, in range: ClosedRange<Int>) throws(BadValue) -> Int {
  guard isDigits(text), let value = Int(text), range.contains(value) else {
    throw BadValue.expected("a number from \(range.lowerBound) to \(range.upperBound)")
  }
  return value
}

func port(_ text: String) throws(BadValue) -> UInt16 {
  UInt16(try number(text, in: 1...65535))
}

/// Seconds: digits, then maybe a point and more digits ("2", "0.5").
func seconds(_ text: String) throws(BadValue) -> Double {
  let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
  guard parts.allSatisfy(isDigits), let value = Double(text), value < 1e9 else {
    throw BadValue.expected("a number of seconds")
  }
  return value
}

/// One of the cases of `Value`, by name.
func choice<Value: RawRepresentable & CaseIterable>(_ text: String) throws(BadValue) -> Value
where Value.RawValue == String {
  guard let value = Value(rawValue: text) else {
    let names = Value.allCases.map(\.rawValue)
    throw BadValue.expected(names.dropLast().joined(separator: ", ") + " or " + names.last!)
  }
  return value
}

private func isDigits(_ text: some StringProtocol) -> Bool {
  !text.isEmpty && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
}
