/// Renders the peer's bytes for a person at a terminal.
///
/// Used only when standard output is a terminal; to a pipe or a file the
/// peer's bytes go unchanged. On a terminal:
/// - each line the peer sends starts with a marker ("< "), in colour when
///   the terminal has colours, so it stands apart from what the user types;
/// - a message that ends without a newline (the course's scripts send
///   none) is ended with one, so the next message starts on its own line;
/// - control characters are shown as ^X (as `cat -v` does) instead of
///   being obeyed: a peer cannot move the cursor, clear the screen or
///   change the title of the user's terminal. Tab is kept; "\r\n" is a
///   newline.
public struct TerminalPrinter: Sendable {
  let colour: Bool
  private var atLineStart = true
  private var pendingReturn = false

  static let marker = Array("< ".utf8)
  static let startColour = Array("\u{1b}[36m".utf8)  // cyan
  static let endColour = Array("\u{1b}[0m".utf8)

  public init(colour: Bool) { self.colour = colour }

  /// Appends to `output` how one read's worth of the peer's bytes is shown.
  public mutating func render(_ bytes: UnsafeRawBufferPointer, into output: inout [UInt8]) {
    for byte in bytes {
      if pendingReturn {
        pendingReturn = false
        if byte != 10 { append(Array("^M".utf8), to: &output) }
      }
      switch byte {
      case 10:  // "\n"
        if atLineStart { startLine(&output) }
        endLine(&output)
      case 13:  // "\r": a newline if "\n" follows, else shown as ^M
        pendingReturn = true
      case 9:  // tab
        append([byte], to: &output)
      case 0..<32, 127:
        append([UInt8(ascii: "^"), byte ^ 0x40], to: &output)
      default:
        append([byte], to: &output)
      }
    }
    pendingReturn = false
    if !atLineStart { endLine(&output) }
  }

  public mutating func render(_ bytes: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    bytes.withUnsafeBytes { render($0, into: &output) }
    return output
  }

  private mutating func append(_ bytes: [UInt8], to output: inout [UInt8]) {
    if atLineStart { startLine(&output) }
    output += bytes
  }

  private mutating func startLine(_ output: inout [UInt8]) {
    if colour { output += Self.startColour }
    output += Self.marker
    atLineStart = false
  }

  private mutating func endLine(_ output: inout [UInt8]) {
    if colour { output += Self.endColour }
    output.append(10)
    atLineStart = true
  }
}
