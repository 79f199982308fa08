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
  /// The line being made visible: one buffer, reused from line to line and
  /// from read to read (`onLine` sees it, never keeps it), so that a read
  /// of many lines costs no allocation per line.
  private var line: [UInt8] = []

  public init() {}

  /// The lines (visible text, without line end) that these bytes end.
  public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [[UInt8]] {
    var lines: [[UInt8]] = []
    feed(bytes) { lines.append(Array($0)) }
    return lines
  }

  public mutating func feed(_ bytes: [UInt8]) -> [[UInt8]] {
    bytes.withUnsafeBytes { feed($0) }
  }

  /// `feed`, without an array per line: `onLine` gets each line's visible
  /// text in turn, valid only during the call (the terminal printer
  /// appends it to what it writes). The loop looks at each byte once and
  /// copies runs of printable ASCII whole.
  public mutating func feed(_ bytes: UnsafeRawBufferPointer, onLine: (UnsafeRawBufferPointer) -> Void) {
    if cutSequence.isEmpty { return scan(bytes, onLine: onLine) }
    let data = cutSequence + bytes
    cutSequence.removeAll()
    data.withUnsafeBytes { scan($0, onLine: onLine) }
  }

  private mutating func scan(_ data: UnsafeRawBufferPointer, onLine: (UnsafeRawBufferPointer) -> Void) {
    var line = self.line
    self.line = []  // (so that `line` is the buffer's only owner: no copy on write)
    defer {
      line.removeAll(keepingCapacity: true)
      self.line = line
    }
    line.removeAll(keepingCapacity: true)
    func endLine() {
      line.withUnsafeBytes { onLine($0) }
      line.removeAll(keepingCapacity: true)
    }
    var index = 0
    if lineEndedByReturn && data.first == 10 { index = 1 }
    lineEndedByReturn = false
    var returnSeen = false
    while index < data.count {
      let byte = data[index]
      if returnSeen {
        returnSeen = false
        if byte == 10 {
          endLine()
          index += 1
          continue
        }
        line.append(UInt8(ascii: "^"))
        line.append(UInt8(ascii: "M"))
      }
      switch byte {
      case 10:
        endLine()
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
      endLine()
    } else if !line.isEmpty {
      endLine()
    }
  }

  /// At the end of the peer's bytes (its FIN): the first bytes of a UTF-8
  /// sequence that never got its end, shown byte by byte (<E6><BC>) as a
  /// line, or nothing. Without it they would never be seen.
  public mutating func finish() -> [[UInt8]] {
    defer { cutSequence.removeAll() }
    guard !cutSequence.isEmpty else { return [] }
    var shown: [UInt8] = []
    for byte in cutSequence { appendHexByte(byte, to: &shown) }
    return [shown]
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
  bytes.withUnsafeBytes { data in
    var index = 0
    while index < data.count { index += appendVisible(data, at: index, to: &line) }
  }
  return line
}

/// Whether `byte` is shown as it is: tab and printable ASCII.
@inline(__always)
private func isPlain(_ byte: UInt8) -> Bool { byte == 9 || (byte >= 32 && byte < 127) }

/// A control byte in a run of them: C0 but tab, "\n" and "\r", or DEL.
private func isShownAsCaret(_ byte: UInt8) -> Bool {
  (byte < 32 && byte != 9 && byte != 10 && byte != 13) || byte == 127
}

/// Whether the eight bytes of `word` are all printable ASCII, 0x20 to 0x7E
/// (tab is left to `isPlain`), tested at once: a byte below 0x20 borrows
/// into its top bit when 0x20 is taken from every byte, a byte above 0x7E
/// has its top bit set already or gets it when 1 is added ("Bit Twiddling
/// Hacks": hasless, hasmore). A borrow or carry that crosses into the next
/// byte comes from a byte that matched: the answer is exact, whichever
/// byte it was.
private func isPlainWord(_ word: UInt64) -> Bool {
  let ones: UInt64 = 0x0101_0101_0101_0101
  let tops: UInt64 = 0x8080_8080_8080_8080
  let below = (word &- ones &* 0x20) & ~word & tops
  let above = (word &+ ones | word) & tops
  return below | above == 0
}

/// Appends to `line` the visible form of what starts at `index` of `data`
/// (a run of printable ASCII, one control byte, one UTF-8 sequence or one
/// invalid byte); returns how many bytes of `data` it took (at least 1).
/// Line ends are not special here: the caller handles them. Appends byte
/// by byte or run by run, never through a temporary array or string.
func appendVisible(_ data: UnsafeRawBufferPointer, at index: Int, to line: inout [UInt8]) -> Int {
  let byte = data[index]
  if isPlain(byte) {  // a run of printable ASCII, as it is
    var end = index + 1
    while end + 8 <= data.count, isPlainWord(data.loadUnaligned(fromByteOffset: end, as: UInt64.self)) {
      end += 8
    }
    while end < data.count, isPlain(data[end]) { end += 1 }
    line.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[index..<end]))
    return end - index
  }
  if byte < 32 || byte == 127 {
    // This control byte, then the run of those that follow it, but for
    // tab and the line ends, which the caller may treat apart.
    var end = index
    repeat {
      line.append(UInt8(ascii: "^"))
      line.append(data[end] ^ 0x40)
      end += 1
    } while end < data.count && isShownAsCaret(data[end])
    return end - index
  }
  let length = UTF8Sequence.validLength(data, at: index)
  guard length > 0 else {
    appendHexByte(byte, to: &line)
    return 1
  }
  let scalar = UTF8Sequence.decode(data, at: index, length: length)
  if isShownAsCodePoint(scalar) {
    line.append(contentsOf: "<U+".utf8)
    appendHex(scalar, digits: 4, to: &line)
    line.append(UInt8(ascii: ">"))
  } else {
    line.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[index..<index + length]))
  }
  return length
}

/// A byte that is not part of valid UTF-8, as <9B>.
func hexByte(_ byte: UInt8) -> [UInt8] {
  var shown: [UInt8] = []
  appendHexByte(byte, to: &shown)
  return shown
}

func appendHexByte(_ byte: UInt8, to line: inout [UInt8]) {
  line.append(UInt8(ascii: "<"))
  appendHex(UInt32(byte), digits: 2, to: &line)
  line.append(UInt8(ascii: ">"))
}

/// A character shown as <U+XXXX> instead of itself: the C1 controls
/// U+0080 to U+009F (some terminals obey U+009B as ESC [) and the
/// bidirectional overrides U+202A to U+202E, U+2066 to U+2069. The room's
/// `LineCleaner` asks the same.
func isShownAsCodePoint(_ scalar: UInt32) -> Bool {
  (0x80...0x9F).contains(scalar) || (0x202A...0x202E).contains(scalar) || (0x2066...0x2069).contains(scalar)
}

/// Appends `value` in upper-case hexadecimal, at least `digits` digits.
func appendHex(_ value: UInt32, digits: Int, to line: inout [UInt8]) {
  forEachHexDigit(value, digits: digits) { line.append($0) }
}

/// The digits of `value` in upper-case hexadecimal, at least `digits` of
/// them, most significant first, handed to `body` one by one.
func forEachHexDigit(_ value: UInt32, digits: Int, _ body: (UInt8) -> Void) {
  var count = 1
  while count < 8, value >> (4 * UInt32(count)) != 0 { count += 1 }
  for position in stride(from: max(count, digits) - 1, through: 0, by: -1) {
    let digit = UInt8(truncatingIfNeeded: value >> (4 * UInt32(position))) & 0xF
    body(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "A") + digit - 10)
  }
}

/// `value` in upper-case hexadecimal, at least `digits` digits.
func hex(_ value: UInt32, digits: Int) -> String {
  var digitsShown: [UInt8] = []
  appendHex(value, digits: digits, to: &digitsShown)
  return String(decoding: digitsShown, as: UTF8.self)
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
  private static func validPrefix(_ data: UnsafeRawBufferPointer, at index: Int) -> (valid: Int, length: Int)
  {
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
  static func validLength(_ data: UnsafeRawBufferPointer, at index: Int) -> Int {
    let (valid, length) = validPrefix(data, at: index)
    return length > 0 && valid == length ? length : 0
  }

  /// Whether the bytes from `index` are the valid start of a sequence that
  /// the end of `data` cuts short.
  static func isCutShort(_ data: UnsafeRawBufferPointer, at index: Int) -> Bool {
    let (valid, length) = validPrefix(data, at: index)
    return length > 1 && valid < length && index + valid == data.count
  }

  /// The scalar value of the valid sequence of `length` bytes at `index`.
  static func decode(_ data: UnsafeRawBufferPointer, at index: Int, length: Int) -> UInt32 {
    var value = UInt32(data[index]) & [0x7F, 0x1F, 0x0F, 0x07][length - 1]
    for offset in 1..<max(1, length) { value = value << 6 | UInt32(data[index + offset] & 0x3F) }
    return value
  }

  // The same on an array (the line editor's typed bytes).
  static func validLength(_ data: [UInt8], at index: Int) -> Int {
    data.withUnsafeBytes { validLength($0, at: index) }
  }

  static func isCutShort(_ data: [UInt8], at index: Int) -> Bool {
    data.withUnsafeBytes { isCutShort($0, at: index) }
  }

  static func decode(_ sequence: ArraySlice<UInt8>) -> UInt32 {
    Array(sequence).withUnsafeBytes { decode($0, at: 0, length: $0.count) }
  }
}
