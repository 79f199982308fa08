// What travels in the room, as bytes: the limits, how a client's bytes
// become safe lines (LineFramer; each line made visible as sanitizeLine,
// Text/PeerText.swift, shows it, and as the two-party chat shows its peer:
// RoomLineBuffer.swift does it in place), what a name may be, and the
// records a reader process writes into the room pipe for the hub.
//
// Everything here is pure (no system call), so the unit tests can drive it
// byte by byte.

/// The room's limits, in one place (docs/room.md quotes them).
public enum RoomLimits {
  /// Bytes of text in one line; a longer line is cut here and its sender
  /// told. Why not 4096: the line travels from its reader process to the
  /// hub with a header ("17 say "), in one write(2) to a pipe, and only a
  /// write of at most PIPE_BUF = 4096 bytes is atomic (pipe(7)).
  public static let lineBytes = 4000
  /// Bytes of UTF-8 in a name.
  public static let nameBytes = 24
  /// What the hub adds to a client's line in the log: "NAME: " and "\n".
  public static let prefixBytes = nameBytes + 3
  /// The longest line the hub puts in the log.
  public static let longestLogLine = lineBytes + prefixBytes
  /// The log's size unless `--log-size` says otherwise, in MiB.
  public static let defaultLogMiB = 64
  /// Seconds a client may take nothing while lines wait for it, unless
  /// `--stall` says otherwise; then it is dropped.
  public static let defaultStallSeconds = 60
  /// Places one address may hold unless `--max-per-host` says otherwise:
  /// a class of 35 behind one school NAT with a laptop and a phone each,
  /// and a second class beside it.
  public static let defaultMaxPerHost = 150
  /// Seconds after which a client that has sent nothing (not a byte) may
  /// lose its place to a newcomer when the room is full, unless
  /// `--silent` says otherwise.
  public static let defaultSilentSeconds = 30
  /// SO_SNDBUF of each client socket (the kernel doubles it, socket(7)), so
  /// that the kernel holds kilobytes for a client that does not read, not
  /// the megabytes TCP autotuning would let it hold.
  public static let socketBufferBytes = 32 * 1024
  /// Seconds of silence after which bytes without a newline are a line
  /// (the course's Python scripts send their messages without one).
  public static let partialLineWait = 0.2
  /// Flood control in each reader process (a token bucket, in bytes of
  /// the log): a client may put a burst of `floodBurst` bytes into the log
  /// at once, then `floodRate` bytes per second. The burst is the client's
  /// share of the log, at most `maxFloodBurst` (`floodBurst(logBytes:maxClients:)`).
  public static let maxFloodBurst = 64 * 1024
  public static let floodRate = 8 * 1024
  /// What a line costs at least (so that many short lines cost too).
  public static let floodLineCost = 256
  /// Seconds the hub keeps trying to hand a leaving client what is still
  /// in the log for it (the goodbye line, the last messages).
  public static let closeWait = 2.0

  /// The burst each client may send at once: its share of the log, so
  /// that when every client of a full room bursts at the same moment, the
  /// log holds it all and nobody who reads falls a whole log behind.
  public static func floodBurst(logBytes: Int, maxClients: Int) -> Int {
    let share = RoomLog.usableBytes(logBytes, longestLine: longestLogLine) / max(1, maxClients)
    return max(floodLineCost, min(maxFloodBurst, share / 1024 * 1024))
  }

  /// What a line costs its sender's flood allowance: at least as many
  /// bytes as the hub may add to the log for it (the line with its
  /// prefix, the notice that it was cut, a command's reply).
  public static func cost(of line: RoomLine) -> Int {
    line.text.withUnsafeBytes { cost(of: $0, cut: line.cut) }
  }

  /// The same for a line's text in place (a reader process's).
  static func cost(of text: UnsafeRawBufferPointer, cut: Bool) -> Int {
    let logged = text.count + prefixBytes + (cut ? cutNoticeBytes : 0)
    return max(floodLineCost, logged, RoomCommand.replyBytes(text))
  }

  /// What a sender whose line was cut reads.
  public static let cutNotice = "* your line was cut to \(lineBytes) bytes\n"
  /// Its length, counted once: a reader reads an Int, and never touches
  /// the string's storage (a retain would write its page).
  static let cutNoticeBytes = cutNotice.utf8.count
}

// MARK: - Lines

/// One line a client sent, made safe: valid UTF-8, no control character
/// but tab, at most `RoomLimits.lineBytes` bytes, no line ending.
public struct RoomLine: Equatable, Sendable {
  public var text: [UInt8]
  /// True when the client's line was longer than the limit and was cut.
  public var cut: Bool

  public init(text: [UInt8], cut: Bool = false) {
    self.text = text
    self.cut = cut
  }
}

/// What a client's bytes come to: lines, and answers to telnet commands
/// that the hub sends back to that client, in this order.
public enum ClientInput: Equatable, Sendable {
  case line(RoomLine)
  case telnet(TelnetReply)
}

/// Cuts a client's byte stream into lines.
///
/// - "\n" ends a line; a "\r" just before it is dropped (telnet sends
///   "\r\n"). An empty line is no line.
/// - Telnet commands (IAC, byte 255, and what follows it: RFC 854) never
///   become text (`TelnetFilter`): a negotiation gets its answer, and an
///   interrupt (telnet's Ctrl-C) throws away the line being typed.
/// - A line longer than `RoomLimits.lineBytes` is cut there and handed out
///   at once; the rest of it, up to its newline, is thrown away. So a
///   reader holds at most one line's worth of bytes, whatever the client
///   sends.
/// - Bytes without a newline stay pending until the caller decides that
///   the line has ended (`flushPartial`: silence, or end of file), or that
///   it never will (`discardPartial`: a connection reset).
///
/// Each line is made visible as its bytes come, in a buffer of the
/// framer's (`InPlaceFramer`, RoomLineBuffer.swift, which the reader
/// process runs on memory it already owns); copies of a framer share that
/// buffer.
public struct LineFramer {
  private let storage = LineStorage()
  private var framer: InPlaceFramer

  public init() { framer = InPlaceFramer(storage: storage.bytes) }

  /// Whether bytes of an unfinished line are waiting.
  public var hasPartial: Bool { framer.hasPartial }

  /// Takes the next bytes from the client; returns the lines they end and
  /// the telnet answers they call for, in order.
  public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [ClientInput] {
    var found: [ClientInput] = []
    framer.feed(bytes) { input in
      switch input {
      case .line(let line): found.append(.line(line.roomLine))
      case .telnet(let reply): found.append(.telnet(reply))
      }
    }
    return found
  }

  /// The client has been silent, or has closed: what it sent without a
  /// newline is a line.
  public mutating func flushPartial() -> RoomLine? {
    var line: RoomLine?
    framer.flushPartial { if case .line(let found) = $0 { line = found.roomLine } }
    return line
  }

  /// The connection was reset in the middle of a line, or the user
  /// interrupted it: the half line goes.
  public mutating func discardPartial() { framer.discardPartial() }
}

/// The storage of a `LineFramer`'s line, freed with it. (A reader process
/// runs an `InPlaceFramer` on a buffer its spawner allocated instead.)
private final class LineStorage {
  let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: LineCleaner.storageBytes, alignment: 8)
  deinit { bytes.deallocate() }
}

/// The longest prefix of valid UTF-8 `bytes` that holds at most `limit`
/// bytes and does not end inside a character's sequence.
public func cutAtCharacter(_ bytes: [UInt8], _ limit: Int) -> [UInt8] {
  guard bytes.count > limit else { return bytes }
  var end = limit
  while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }  // a continuation byte
  return Array(bytes[..<end])
}

// MARK: - Names

/// Why a name was refused, as the client is told.
public enum NameProblem: Error, Equatable, Sendable {
  case empty, tooLong, badCharacter, reserved, mixedScripts, compatibility, invisible

  public var description: String {
    switch self {
    case .empty: "a name cannot be empty"
    case .tooLong: "a name holds at most \(RoomLimits.nameBytes) bytes"
    case .badCharacter: "a name holds only letters, digits, '-', '_' and '.'"
    case .reserved: "names guest-N are given by the room"
    case .mixedScripts: "a name is written in one script (Latin, Greek, Cyrillic ...), not several"
    case .compatibility: "a name holds no compatibility form (fullwidth letters, ligatures): write it plainly"
    case .invisible: "a name holds no invisible character"
    }
  }
}

/// Checks a name a client asks for (already sanitized UTF-8): 1 to
/// `RoomLimits.nameBytes` bytes of letters (any script), digits, "-", "_"
/// and "."; no space, punctuation or symbol, so that a name is always
/// printable and can never look like a notice ("* ...") or a prefix
/// ("name: "); none that could pass for another (`lookalikeProblem`,
/// RoomNames.swift). "guest-N" names are the room's.
public func validateName(_ bytes: [UInt8]) -> Result<String, NameProblem> {
  if bytes.isEmpty { return .failure(.empty) }
  if bytes.count > RoomLimits.nameBytes { return .failure(.tooLong) }
  let name = String(decoding: bytes, as: UTF8.self)
  for scalar in name.unicodeScalars {
    let allowed =
      scalar.isASCII
      ? (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
        || "-_.".unicodeScalars.contains(scalar))
      : scalar.properties.isAlphabetic && scalar.value != 0xFFFD
    if !allowed { return .failure(.badCharacter) }
  }
  if let problem = lookalikeProblem(name) { return .failure(problem) }
  if isGuestName(name) { return .failure(.reserved) }
  return .success(name)
}

/// "guest-" followed by digits, in any case.
public func isGuestName(_ name: String) -> Bool {
  let lower = name.lowercased()
  guard lower.hasPrefix("guest-") else { return false }
  let number = lower.dropFirst("guest-".count)
  return !number.isEmpty && number.allSatisfy { $0.isASCII && $0.isNumber }
}

/// The key that makes names unique: "Alice" and "alice" are one name.
public func nameKey(_ name: String) -> String { name.lowercased() }

// MARK: - Records: reader process → hub

/// What a reader process tells the hub, one record per write(2) into the
/// room pipe: a line of text, readable in `strace -f -e write`:
///
///     17 start                   reader 17 runs: the hub may welcome its client
///     17 say hello everyone      a line from client 17
///     17 cut xxxxxxxx...         a line that was cut at the limit
///     17 slow                    client 17 is being held back (flood control)
///     17 telnet WILL 6           send client 17 this telnet answer (IAC WILL 6)
///     17 bye eof                 client 17 closed the connection (or: reset,
///                                or the error text); the reader then exits
///     17 gone exited 0           (from the spawner) reader 17 has been reaped
///
/// A record is at most 4016 bytes, under PIPE_BUF (4096): the kernel writes
/// it into the pipe in one piece, never mixed with another reader's.
public enum RoomRecord: Equatable, Sendable {
  case start(client: Int)
  case say(client: Int, RoomLine)
  case slow(client: Int)
  case telnet(client: Int, TelnetReply)
  case bye(client: Int, reason: String)
  case gone(client: Int, how: String)

  public var client: Int {
    switch self {
    case .start(let client), .say(let client, _), .slow(let client), .telnet(let client, _),
      .bye(let client, _),
      .gone(let client, _):
      client
    }
  }

  /// The bytes of the record, ending with "\n".
  public var bytes: [UInt8] {
    switch self {
    case .say(let client, let line):
      Array("\(client) \(line.cut ? "cut" : "say") ".utf8) + line.text + [10]
    case .start(let client): Array("\(client) start\n".utf8)
    case .slow(let client): Array("\(client) slow\n".utf8)
    case .telnet(let client, let reply):
      Array("\(client) telnet \(reply.verb.rawValue) \(reply.option)\n".utf8)
    case .bye(let client, let reason): Array("\(client) bye \(reason)\n".utf8)
    case .gone(let client, let how): Array("\(client) gone \(how)\n".utf8)
    }
  }

  /// Calls `body` with the record's bytes in three pieces, none on the
  /// heap: the head ("17 say ", "17 start\n"), built on the stack; the text
  /// that follows it (a line, a reason), in place; and the final "\n" when
  /// there is a text. A reader process puts them together without malloc:
  /// after fork(2), every page it writes is a page of its own, and a malloc
  /// writes the allocator's pages (docs/room.md, "What a reader costs").
  public func withPieces<R>(
    _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(Errno) -> R
  ) throws(Errno) -> R {
    try withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { head throws(Errno) in
      var count = Self.decimal(client, into: head)
      func put(_ word: StaticString) {
        for byte in word.utf8Bytes {
          head[count] = byte
          count += 1
        }
      }
      func finish(_ text: UnsafeRawBufferPointer) throws(Errno) -> R {
        let newline: UInt8 = 10
        return try withUnsafeBytes(of: newline) { end throws(Errno) in
          try body(UnsafeRawBufferPointer(rebasing: head[..<count]), text, text.isEmpty ? text : end)
        }
      }
      switch self {
      case .say(_, let line):
        put(line.cut ? " cut " : " say ")
        // withUnsafeBytes and withUTF8 rethrow untyped errors: a Result carries the Errno through.
        return try line.text.withUnsafeBytes { text in Result { () throws(Errno) in try finish(text) } }.get()
      case .start: put(" start\n")
      case .slow: put(" slow\n")
      case .telnet(_, let reply):
        put(" telnet ")
        switch reply.verb {
        case .will: put("WILL ")
        case .wont: put("WONT ")
        case .dont: put("DONT ")
        }
        count += Self.decimal(
          Int(reply.option), into: UnsafeMutableRawBufferPointer(rebasing: head[count...]))
        put("\n")
      case .bye(_, let reason), .gone(_, let reason):
        if case .bye = self { put(" bye ") } else { put(" gone ") }
        var reason = reason
        return try reason.withUTF8 { text in
          Result { () throws(Errno) in try finish(UnsafeRawBufferPointer(text)) }
        }
        .get()
      }
      return try finish(UnsafeRawBufferPointer(start: nil, count: 0))
    }
  }

  /// Writes `value` (not negative) in decimal at the start of `buffer`;
  /// returns the number of digits.
  static func decimal(_ value: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
    var digits = 1
    var rest = value / 10
    while rest > 0 {
      digits += 1
      rest /= 10
    }
    rest = value
    for index in stride(from: digits - 1, through: 0, by: -1) {
      buffer[index] = UInt8(48 + rest % 10)
      rest /= 10
    }
    return digits
  }

  /// Reads one record, given its bytes without the final "\n"; nil if it
  /// is not one (a bug: only reader processes write into the pipe).
  public init?(_ record: ArraySlice<UInt8>) {
    guard let space = record.firstIndex(of: 32),
      let client = Int(String(decoding: record[..<space], as: UTF8.self))
    else { return nil }
    let rest = record[(space + 1)...]
    let kindEnd = rest.firstIndex(of: 32) ?? rest.endIndex
    let kind = String(decoding: rest[..<kindEnd], as: UTF8.self)
    let text = kindEnd < rest.endIndex ? Array(rest[(kindEnd + 1)...]) : []
    switch kind {
    case "say": self = .say(client: client, RoomLine(text: text))
    case "cut": self = .say(client: client, RoomLine(text: text, cut: true))
    case "start": self = .start(client: client)
    case "slow": self = .slow(client: client)
    case "telnet":
      let words = String(decoding: text, as: UTF8.self).split(separator: " ")
      guard words.count == 2, let verb = TelnetReply.Verb(rawValue: String(words[0])),
        let option = UInt8(words[1])
      else { return nil }
      self = .telnet(client: client, TelnetReply(verb, option))
    case "bye": self = .bye(client: client, reason: String(decoding: text, as: UTF8.self))
    case "gone": self = .gone(client: client, how: String(decoding: text, as: UTF8.self))
    default: return nil
    }
  }
}

// MARK: - Flood control

/// A token bucket: a client may send `capacity` bytes at once, then `rate`
/// bytes per second. `delay(cost:now:)` says how long to wait before a
/// line of that cost may go.
public struct TokenBucket: Sendable {
  public let capacity: Double
  public let rate: Double
  public private(set) var tokens: Double
  private var last: Double

  public init(capacity: Int, rate: Int, now: Double) {
    self.capacity = Double(capacity)
    self.rate = Double(rate)
    self.tokens = Double(capacity)
    self.last = now
  }

  /// Takes `cost` tokens; returns the seconds to wait first (0 if the
  /// bucket holds enough). The tokens may go below zero: the wait pays them back.
  public mutating func delay(cost: Int, now: Double) -> Double {
    tokens = min(capacity, tokens + (now - last) * rate)
    last = now
    tokens -= Double(cost)
    return tokens >= 0 ? 0 : -tokens / rate
  }

  /// Whether the bucket has filled up again.
  public func isFull(now: Double) -> Bool { tokens + (now - last) * rate >= capacity }
}
