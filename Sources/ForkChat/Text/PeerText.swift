// The peer's bytes as a person may see them: lines of visible text that
// cannot act on the terminal. Used by the --plain renderer
// (Session/TerminalPrinter.swift) and the chat screen's conversation
// (Screen/Conversation.swift), so both show the same thing; the room shows
// each client's line with `sanitizeLine` below, the same way.
//
// Pure: no system call, so the unit tests can feed it byte by byte.

/// Splits the peer's bytes into lines and makes each one harmless, shown
/// the way `less` shows what it cannot print:
/// - C0 controls and DEL as ^X (ESC is ^[, so no escape sequence can move
///   the cursor, clear the screen or set the window title); tab is kept;
/// - C1 controls U+0080 to U+009F (some terminals obey U+009B as ESC [) and
///   the bidirectional overrides U+202A to U+202E, U+2066 to U+2069 (which
///   reorder what follows) as <U+009B>, <U+202E>;
/// - any byte that is not part of valid UTF-8 as <9B>: a lone 0x9B, the
///   8-bit form of CSI, included.
/// "\n" and "\r\n" end a line; a lone "\r" is shown as ^M.
///
/// `feed` takes what one read(2) returned. The bytes of a message that does
/// not end with a newline (the course's scripts send none) are a line of
/// their own at the end of the read. What the end of a read cuts is joined
/// up with the next read: a UTF-8 sequence (its first bytes wait), and "\r" + "\n" (the "\r" ends the line at
/// once; a "\n" that starts the next read is then that line's end, not an
/// empty line). `finish`, at the end of the peer's bytes, gives what still
/// waits.
public struct PeerText: Sendable {
  /// The first bytes of a UTF-8 sequence that the end of the last read cut.
  private var cutSequence: [UInt8] = []
  /// The last read ended with "\r", which ended its line.
  private var lineEndedByReturn = false

  public init() {}

  /// The lines (visible text, without line end) that these bytes end.
  public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [[UInt8]] {
    let data = cutSequence.isEmpty ? Array(bytes) : cutSequence + Array(bytes)
    cutSequence.removeAll()
    var lines: [[UInt8]] = []
    var line: [UInt8] = []
    line.reserveCapacity(data.count + 16)
    var index = 0
    if lineEndedByReturn && data.first == 10 { index = 1 }
    lineEndedByReturn = false
    var returnSeen = false
    while index < data.count {
      let byte = data[index]
      if returnSeen {
        returnSeen = false
        if byte == 10 {
          lines.append(line)
          line.removeAll()
          index += 1
          continue
        }
        line += Array("^M".utf8)
      }
      switch byte {
      case 10:
        lines.append(line)
        line.removeAll(keepingCapacity: true)
        index += 1
      case 13:
        returnSeen = true
        index += 1
      default:
        if byte >= 0x80 && UTF8Sequence.isCutShort(data, at: index) {
          cutSequence = Array(data[index...])
          index = data.count
        } else {
          index += appendVisible(data, at: index, to: &line)
        }
      }
    }
    if returnSeen {
      lineEndedByReturn = true
      lines.append(line)
    } else if !line.isEmpty {
      lines.append(line)
    }
    return lines
  }

  public mutating func feed(_ bytes: [UInt8]) -> [[UInt8]] {
    bytes.withUnsafeBytes { feed($0) }
  }

  /// At the end of the peer's bytes (its FIN): the first bytes of a UTF-8
  /// sequence that never got its end, shown byte by byte (<E6><BC>) as a
  /// line, or nothing. Without it they would never be seen.
  public mutating func finish() -> [[UInt8]] {
    defer { cutSequence.removeAll() }
    return cutSequence.isEmpty ? [] : [cutSequence.flatMap(hexByte)]
  }
}

/// One line of a peer's bytes made visible, the way `PeerText` shows a
/// line: the room's `LineFramer` (Room/RoomText.swift) uses it for each
/// client's line, so the chat and the room show bad bytes alike. Every byte
/// is text here ("\n" and "\r" are ^J and ^M); a UTF-8 sequence the end of
/// `bytes` cuts short is shown byte by byte (<E6><BC>). The result is
/// valid UTF-8 that holds no control character but tab.
public func sanitizeLine(_ bytes: [UInt8]) -> [UInt8] {
  var line: [UInt8] = []
  line.reserveCapacity(bytes.count + 16)
  var index = 0
  while index < bytes.count { index += appendVisible(bytes, at: index, to: &line) }
  return line
}

/// Appends to `line` the visible form of what starts at `index` of `data`
/// (a run of printable ASCII, one control byte, one UTF-8 sequence or one
/// invalid byte); returns how many bytes of `data` it took (at least 1).
/// Line ends are not special here: the caller handles them.
func appendVisible(_ data: [UInt8], at index: Int, to line: inout [UInt8]) -> Int {
  let byte = data[index]
  switch byte {
  case 9, 32..<127:  // a run of printable ASCII, as it is
    var end = index + 1
    while end < data.count, data[end] == 9 || (32..<127).contains(data[end]) { end += 1 }
    line += data[index..<end]
    return end - index
  case 0..<32, 127:
    line += [UInt8(ascii: "^"), byte ^ 0x40]
    return 1
  default:
    let length = UTF8Sequence.validLength(data, at: index)
    guard length > 0 else {
      line += hexByte(byte)
      return 1
    }
    let sequence = data[index..<index + length]
    let scalar = UTF8Sequence.decode(sequence)
    if (0x80...0x9F).contains(scalar) || (0x202A...0x202E).contains(scalar)
      || (0x2066...0x2069).contains(scalar)
    {
      line += Array("<U+\(hex(scalar, digits: 4))>".utf8)
    } else {
      line += sequence
    }
    return length
  }
}

/// A byte that is not part of valid UTF-8, as <9B>.
func hexByte(_ byte: UInt8) -> [UInt8] { Array("<\(hex(UInt32(byte), digits: 2))>".utf8) }

/// `value` in upper-case hexadecimal, at least `digits` digits.
func hex(_ value: UInt32, digits: Int) -> String {
  let text = String(value, radix: 16, uppercase: true)
  return String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// UTF-8 as the Unicode standard defines it (Table 3-7): no overlong form,
/// no surrogate, nothing past U+10FFFF.
enum UTF8Sequence {
  /// The length a sequence starting with `lead` must have (0: not a lead
  /// byte), and the range its second byte must be in.
  static func shape(_ lead: UInt8) -> (length: Int, second: ClosedRange<UInt8>) {
    switch lead {
    case 0..<0x80: (1, 0x80...0xBF)
    case 0xC2...0xDF: (2, 0x80...0xBF)
    case 0xE0: (3, 0xA0...0xBF)
    case 0xE1...0xEC, 0xEE...0xEF: (3, 0x80...0xBF)
    case 0xED: (3, 0x80...0x9F)
    case 0xF0: (4, 0x90...0xBF)
    case 0xF1...0xF3: (4, 0x80...0xBF)
    case 0xF4: (4, 0x80...0x8F)
    default: (0, 0x80...0xBF)
    }
  }

  /// How many bytes of `data` from `index` are in order, at most the
  /// length the lead byte asks for.
  private static func validPrefix(_ data: [UInt8], at index: Int) -> (valid: Int, length: Int) {
    let (length, second) = shape(data[index])
    guard length > 0 else { return (0, 0) }
    var valid = 1
    while valid < length, index + valid < data.count {
      let range = valid == 1 ? second : 0x80...0xBF
      guard range.contains(data[index + valid]) else { break }
      valid += 1
    }
    return (valid, length)
  }

  /// The length of the valid sequence at `index`, or 0 if there is none.
  static func validLength(_ data: [UInt8], at index: Int) -> Int {
    let (valid, length) = validPrefix(data, at: index)
    return length > 0 && valid == length ? length : 0
  }

  /// Whether the bytes from `index` are the valid start of a sequence that
  /// the end of `data` cuts short.
  static func isCutShort(_ data: [UInt8], at index: Int) -> Bool {
    let (valid, length) = validPrefix(data, at: index)
    return length > 1 && valid < length && index + valid == data.count
  }

  /// The scalar value of one valid sequence.
  static func decode(_ sequence: ArraySlice<UInt8>) -> UInt32 {
    let bytes = Array(sequence)
    var value = UInt32(bytes[0]) & [0x7F, 0x1F, 0x0F, 0x07][bytes.count - 1]
    for byte in bytes.dropFirst() { value = value << 6 | UInt32(byte & 0x3F) }
    return value
  }
}
