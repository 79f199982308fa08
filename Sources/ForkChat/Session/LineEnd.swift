/// How a line typed on a terminal ends on the wire (--line-end).
///
/// A terminal in canonical mode ends each line the user types with "\n"
/// (termios(3): the Enter key's "\r" becomes "\n", ICRNL). Peers do not all
/// want that: line-based Internet servers (SMTP, HTTP, telnet) want "\r\n",
/// as `nc -C` sends, and the course's Python scripts send a message with
/// `input()` and `sendall()`, without any ending, and compare what they
/// receive with "exit" exactly.
///
/// Only a person's lines change: bytes from a pipe or a file are data and
/// go as they are. The quit word is found in the typed bytes before they
/// are translated, so it works with every ending.
public enum LineEnd: String, CaseIterable, Equatable, Sendable {
  /// "\n", as typed (the default).
  case lf
  /// "\r\n", as `nc -C` sends.
  case crlf
  /// Nothing: the line alone, as the course's scripts send it.
  case none

  /// The bytes that end a line on the wire.
  public var bytes: [UInt8] {
    switch self {
    case .lf: [10]
    case .crlf: [13, 10]
    case .none: []
    }
  }

  /// Appends to `wire` what goes on the wire for `typed`, bytes read from a
  /// terminal (or a line from a line editor, with its "\n"): each "\n", the
  /// end of a typed line, becomes this line end; every other byte is kept.
  /// The one place where a typed line's ending is translated.
  public func translate(_ typed: some Collection<UInt8>, into wire: inout [UInt8]) {
    let ending = bytes
    for byte in typed {
      if byte == 10 {
        wire += ending
      } else {
        wire.append(byte)
      }
    }
  }
}
