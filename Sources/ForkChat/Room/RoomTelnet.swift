// Telnet in the room: a telnet client mixes commands into its bytes, each
// introduced by IAC, byte 255 (RFC 854). The room keeps none of them as
// text; it answers the ones a client waits for.
//
// The one that matters: Ctrl-C in telnet sends IAC IP (interrupt process)
// and IAC DO TIMING-MARK, then throws away everything it receives until the
// server answers the mark (RFC 860): a server that never answers leaves
// that user blind for good. The room answers IAC WILL TIMING-MARK, in the
// log's order, so the user sees the lines that come after.

/// A telnet command byte (RFC 854).
enum TelnetByte {
  static let subnegotiationEnd: UInt8 = 240  // SE
  static let breakKey: UInt8 = 243  // BRK
  static let interruptProcess: UInt8 = 244  // IP
  static let subnegotiation: UInt8 = 250  // SB
  static let will: UInt8 = 251
  static let wont: UInt8 = 252
  static let `do`: UInt8 = 253
  static let dont: UInt8 = 254
  static let iac: UInt8 = 255
  /// The TIMING-MARK option (RFC 860).
  static let timingMark: UInt8 = 6
}

/// What the room answers to a client's telnet negotiation: IAC, a verb,
/// an option.
public struct TelnetReply: Equatable, Sendable {
  public enum Verb: String, Sendable {
    case will = "WILL", wont = "WONT", dont = "DONT"

    var byte: UInt8 {
      switch self {
      case .will: TelnetByte.will
      case .wont: TelnetByte.wont
      case .dont: TelnetByte.dont
      }
    }
  }

  public let verb: Verb
  public let option: UInt8

  public init(_ verb: Verb, _ option: UInt8) {
    self.verb = verb
    self.option = option
  }

  /// The bytes on the wire.
  public var bytes: [UInt8] { [TelnetByte.iac, verb.byte, option] }

  /// The answer to `command` (WILL, WONT, DO or DONT) about `option`, if
  /// one is due: DO TIMING-MARK is answered WILL TIMING-MARK (the mark:
  /// everything before it has been handled); any other DO is refused
  /// (WONT), any WILL declined (DONT), as RFC 854 asks of a party that
  /// supports no option; WONT and DONT need no answer.
  static func answering(_ command: UInt8, _ option: UInt8) -> TelnetReply? {
    switch command {
    case TelnetByte.do: TelnetReply(option == TelnetByte.timingMark ? .will : .wont, option)
    case TelnetByte.will: TelnetReply(.dont, option)
    default: nil
    }
  }
}

/// Takes telnet commands out of a client's bytes, one byte at a time.
struct TelnetFilter: Sendable {
  /// What a byte turned out to be.
  enum Event: Equatable {
    case data(UInt8)
    /// IAC IP or IAC BRK: the user interrupted what they were typing.
    case interrupt
    case answer(TelnetReply)
    /// Part of a command that asks for nothing.
    case none
  }

  private var state = State.data

  private enum State {
    case data
    case command  // after IAC
    case option(UInt8)  // after IAC WILL, WONT, DO or DONT: one option byte
    case subnegotiation  // after IAC SB, until IAC SE
    case subnegotiationCommand  // IAC inside a subnegotiation
  }

  mutating func take(_ byte: UInt8) -> Event {
    switch state {
    case .data:
      if byte == TelnetByte.iac {
        state = .command
        return .none
      }
      return .data(byte)
    case .command:
      state = .data
      switch byte {
      case TelnetByte.iac: return .data(byte)  // IAC IAC: a data byte 255 (never valid UTF-8)
      case TelnetByte.will...TelnetByte.dont: state = .option(byte)
      case TelnetByte.subnegotiation: state = .subnegotiation
      case TelnetByte.interruptProcess, TelnetByte.breakKey: return .interrupt
      default: break  // NOP, AO, AYT, EC, EL, GA ...: ignored
      }
      return .none
    case .option(let command):
      state = .data
      return TelnetReply.answering(command, byte).map { .answer($0) } ?? .none
    case .subnegotiation:
      if byte == TelnetByte.iac { state = .subnegotiationCommand }
      return .none
    case .subnegotiationCommand:
      state = byte == TelnetByte.subnegotiationEnd ? .data : .subnegotiation
      return .none
    }
  }
}
