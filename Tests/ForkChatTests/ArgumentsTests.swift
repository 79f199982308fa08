import ForkChat
import Testing

@testable import ForkChatCommand

@Suite("Command line")
struct ArgumentsTests {
  func parsed(_ subcommand: Subcommand, _ arguments: [String]) throws -> Options {
    guard case .run(subcommand, let options) = try parse([subcommand.rawValue] + arguments) else {
      Issue.record("not a \(subcommand) command")
      return Options()
    }
    return options
  }

  func listenOptions(_ arguments: [String]) throws -> Options { try parsed(.listen, arguments) }
  func connectOptions(_ arguments: [String]) throws -> Options { try parsed(.connect, arguments) }

  func reason(_ arguments: [String]) -> String? {
    do {
      _ = try parse(arguments)
      return nil
    } catch {
      return error.reason
    }
  }

  @Test func listenDefaults() throws {
    let options = try listenOptions([])
    #expect(options.port == 8080)
    #expect(options.bindAddress == nil)
    #expect(options.keep == false)
    #expect(options.allow == nil)
    #expect(options.family == .any)
    #expect(options.session.quitWord == Array("exit".utf8))
    #expect(options.session.linger == nil)
  }

  @Test func optionsBeforeAndAfterPositionals() throws {
    let before = try listenOptions(["--keep", "--bind", "127.0.0.1", "9000"])
    let after = try listenOptions(["9000", "--keep", "--bind=127.0.0.1"])
    #expect(before == after)
    #expect(after.port == 9000 && after.keep && after.bindAddress == "127.0.0.1")
  }

  @Test func connectHostPortAndOptions() throws {
    let options = try connectOptions(["-6", "--retry", "2.5", "::1", "4242", "--quit", "fin", "--linger=0"])
    #expect(options.host == "::1")
    #expect(options.port == 4242)
    #expect(options.retry == 2.5)
    #expect(options.family == .inet6)
    #expect(options.session.quitWord == Array("fin".utf8))
    #expect(options.session.linger == 0)
  }

  @Test func lineEnd() throws {
    #expect(try connectOptions(["h"]).session.lineEnd == .lf)
    #expect(try connectOptions(["h", "--line-end", "crlf"]).session.lineEnd == .crlf)
    #expect(try listenOptions(["--line-end=none", "--mode", "alternate"]).session.lineEnd == LineEnd.none)
  }

  @Test func deadPeerAndConnectTimeout() throws {
    #expect(try listenOptions([]).session.deadPeer == 60)
    #expect(try connectOptions(["h"]).session.deadPeer == 60)
    #expect(try connectOptions(["h"]).connectTimeout == 10)
    #expect(try listenOptions(["--dead-peer", "0"]).session.deadPeer == 0)
    #expect(try connectOptions(["h", "--dead-peer=90", "--connect-timeout", "2.5"]).session.deadPeer == 90)
    #expect(try connectOptions(["h", "--connect-timeout=0"]).connectTimeout == 0)
    #expect(try connectOptions(["--connect-timeout", "3", "h"]).connectTimeout == 3)
  }

  @Test func emptyQuitWordDisablesIt() throws {
    #expect(try connectOptions(["h", "--quit", ""]).session.quitWord == nil)
    #expect(try connectOptions(["h", "--quit="]).session.quitWord == nil)
  }

  @Test func doubleDashEndsOptions() throws {
    #expect(try connectOptions(["--", "-host"]).host == "-host")
  }

  @Test func helpAndVersion() throws {
    #expect(try parse(["--version"]) == .version)
    #expect(try parse(["listen", "--version"]) == .version)
    #expect(try parse(["--help"]) == .help(mainHelp()))
    #expect(try parse(["-h"]) == .help(mainHelp()))
    #expect(try parse(["help"]) == .help(mainHelp()))
    #expect(try parse(["help", "connect"]) == .help(help(for: .connect)))
    #expect(try parse(["listen", "7000", "-h"]) == .help(help(for: .listen)))
  }

  @Test func helpHasTheArgumentParserSections() {
    for section in ["OVERVIEW:", "USAGE:", "OPTIONS:", "SUBCOMMANDS:"] {
      #expect(mainHelp().contains(section))
    }
    for help in Subcommand.allCases.map({ help(for: $0) }) {
      for section in ["OVERVIEW:", "USAGE:", "ARGUMENTS:", "OPTIONS:", "--version", "-h, --help"] {
        #expect(help.contains(section))
      }
    }
  }

  @Test(arguments: [
    (["listen", "http"], "Invalid port 'http': expected a number from 1 to 65535."),
    (["listen", "0"], "Invalid port '0': expected a number from 1 to 65535."),
    (["listen", "65536"], "Invalid port '65536': expected a number from 1 to 65535."),
    (["listen", "-1"], "Invalid port '-1': expected a number from 1 to 65535."),
    (["listen", "-9x"], "Unknown option '-9x'."),
    (["listen", "80", "81"], "Unexpected argument '81'."),
    (["connect"], "Missing expected argument '<host>'."),
    (["connect", ""], "The host cannot be empty."),
    (["connect", "h", "1", "2"], "Unexpected argument '2'."),
    (["connect", "h", "--keep"], "Unknown option '--keep'."),
    (["listen", "--retry", "1"], "Unknown option '--retry'."),
    (["listen", "--connect-timeout", "1"], "Unknown option '--connect-timeout'."),
    (["connect", "h", "--dead-peer"], "Missing value for '--dead-peer'."),
    (
      ["connect", "h", "--dead-peer", "soon"],
      "Invalid value 'soon' for '--dead-peer': expected a number of seconds."
    ),
    (
      ["connect", "h", "--connect-timeout", "-2"],
      "Invalid value '-2' for '--connect-timeout': expected a number of seconds."
    ),
    (["listen", "-4", "-6"], "Cannot use -4 and -6 together."),
    (["connect", "h", "--retry"], "Missing value for '--retry'."),
    (
      ["connect", "h", "--retry", "soon"], "Invalid value 'soon' for '--retry': expected a number of seconds."
    ),
    (["connect", "h", "--linger", "-1"], "Invalid value '-1' for '--linger': expected a number of seconds."),
    (["listen", "--keep=yes"], "'--keep' takes no value."),
    (
      ["connect", "h", "--line-end", "cr"], "Invalid value 'cr' for '--line-end': expected lf, crlf or none."
    ),
    (["listen", "--echo", "--line-end", "none"], "Cannot use --echo with --line-end."),
    (["chat"], "Unknown subcommand 'chat'."),
    (["--frobnicate"], "Unknown option '--frobnicate'."),
    ([], "Missing subcommand: listen, connect, room or check."),
  ])
  func usageErrors(arguments: [String], expected: String) {
    #expect(reason(arguments) == expected)
  }

  @Test func usageIsMadeFromTheTable() {
    #expect(
      usage(for: .listen, label: "USAGE: ")
        == """
        USAGE: forkchat listen [<port>] [--bind <address>] [--keep] [--allow <address>]
                               [--echo] [-4|-6] [--mode <mode>] [--first <turn>]
                               [--quit <word>] [--line-end <end>] [--linger <seconds>]
                               [--dead-peer <seconds>] [--plain] [--trace]
        """
    )
    #expect(
      usage(for: .connect, label: "Usage: ").hasPrefix(
        "Usage: forkchat connect <host> [<port>] [--retry <seconds>]\n"
          + "                        [--connect-timeout <seconds>] [-4|-6]"))
    #expect(
      usage(for: .room, label: "USAGE: ")
        == """
        USAGE: forkchat room [<port>] [--bind <address>] [--max-clients <n>]
                             [--log-size <MiB>] [--stall <seconds>] [--max-per-host <n>]
                             [--silent <seconds>] [--dead-peer <seconds>] [--trace]
        """)
    // No line of a usage is wider than 80 columns.
    for subcommand in Subcommand.allCases {
      for line in usage(for: subcommand, label: "USAGE: ").split(separator: "\n") {
        #expect(line.count <= 80, "\(line)")
      }
    }
    // Every option of the table is in the help of each subcommand that takes it.
    for option in ForkChatCommand.options {
      for subcommand in option.subcommands { #expect(help(for: subcommand).contains("  \(option.name)")) }
    }
  }

  @Test func helpLinesFitIn80Columns() {
    for text in [mainHelp()] + Subcommand.allCases.map({ help(for: $0) }) {
      for line in text.split(separator: "\n") where !line.hasPrefix("USAGE:") { #expect(line.count <= 80) }
    }
  }

  /// One rule for every number: decimal digits only (and a fraction for
  /// seconds).
  @Test(arguments: ["+80", " 80", "80 ", "0x50", "8e1", "٨٠", ""])
  func portsAreDecimalDigitsOnly(text: String) {
    #expect(reason(["listen", text]) == "Invalid port '\(text)': expected a number from 1 to 65535.")
    #expect(reason(["room", "--max-clients", text])?.hasPrefix("Invalid value") == true)
  }

  @Test(arguments: ["0x10", "+2", " 2", "2 ", "1e3", ".5", "5.", "inf", "nan", "-0", "1_000"])
  func secondsAreDecimalDigitsOnly(text: String) {
    #expect(
      reason(["connect", "h", "--linger", text])
        == "Invalid value '\(text)' for '--linger': expected a number of seconds.")
    #expect(
      reason(["connect", "h", "--retry", text])
        == "Invalid value '\(text)' for '--retry': expected a number of seconds.")
  }

  @Test func leadingZerosAreDecimal() throws {
    #expect(try listenOptions(["080"]).port == 80)
    #expect(try connectOptions(["h", "--linger", "0.50"]).session.linger == 0.5)
    #expect(try connectOptions(["h", "--retry", "007"]).retry == 7)
  }

  @Test func echoTakesNoChatOption() {
    for option in [["--mode", "threads"], ["--quit", "fin"], ["--linger", "1"]] {
      #expect(reason(["listen", "--echo"] + option) == "Cannot use --echo with \(option[0]).")
    }
    #expect(reason(["listen", "--echo", "--mode", "fork"]) == nil)  // the echo server forks
  }

  @Test func usageErrorTextPointsToHelp() {
    let error = UsageError(
      reason: "Invalid port 'x': expected a number from 1 to 65535.", subcommand: .listen)
    let lines = error.text.split(separator: "\n")
    #expect(lines.count == 6)
    #expect(lines[0] == "Error: Invalid port 'x': expected a number from 1 to 65535.")
    #expect(lines[1].hasPrefix("Usage: forkchat listen [<port>]"))
    #expect(lines[2].hasPrefix("                       [--echo]"))
    #expect(lines[5] == "  See 'forkchat listen --help' for more information.")
  }
}
