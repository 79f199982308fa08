/// Renders the peer's bytes for a person at a terminal, in the line-by-line
/// chat (`--plain`, the alternate mode, or a terminal the chat screen does
/// not suit).
///
/// Used only when standard output is a terminal; to a pipe or a file the
/// peer's bytes go unchanged. On a terminal:
/// - each line the peer sends starts with a marker ("< "), in colour when
///   the terminal has colours, so it stands apart from what the user types;
/// - a message that ends without a newline (the course's scripts send
///   none) is ended with one, so the next message starts on its own line;
/// - control characters are shown, never obeyed (`PeerText`): C0 as ^X
///   (as `cat -v` does), C1 controls, bidirectional overrides and bytes
///   that are not UTF-8 as <U+009B> and <9B> (as `less` does). A peer cannot
///   move the cursor, clear the screen or change the title of the user's
///   terminal. Tab is kept; "\r\n" is a newline, even when the two bytes
///   arrive in two reads.
public struct TerminalPrinter: Sendable {
  let colour: Bool
  private var text = PeerText()

  public init(colour: Bool) { self.colour = colour }

  /// Appends to `output` how one read's worth of the peer's bytes is shown:
  /// each line straight from the sanitizer into `output`, no array per
  /// line.
  public mutating func render(_ bytes: UnsafeRawBufferPointer, into output: inout [UInt8]) {
    let colour = self.colour
    text.feed(bytes) { line in Self.mark(line, colour: colour, into: &output) }
  }

  /// Appends what the peer's last bytes left waiting (`PeerText.finish`),
  /// once it has closed.
  public mutating func finish(into output: inout [UInt8]) {
    for line in text.finish() { line.withUnsafeBytes { Self.mark($0, colour: colour, into: &output) } }
  }

  private static func mark(_ line: UnsafeRawBufferPointer, colour: Bool, into output: inout [UInt8]) {
    // Literals' bytes, not array constants: an array is retained and
    // released at each use, once per line.
    if colour { output.append(contentsOf: ("\u{1b}[36m" as StaticString).utf8Bytes) }  // cyan
    output.append(contentsOf: ("< " as StaticString).utf8Bytes)
    output.append(contentsOf: line)
    if colour { output.append(contentsOf: ("\u{1b}[0m" as StaticString).utf8Bytes) }
    output.append(10)
  }

  public mutating func render(_ bytes: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    bytes.withUnsafeBytes { render($0, into: &output) }
    return output
  }
}
