import Glibc

// A client's line made visible as its bytes come, into memory the reader
// process already owns: no array, no string, no malloc per line.
//
// Why: after fork(2) every page a reader writes becomes its own copy, and
// a malloc writes the allocator's pages (docs/room.md, "What a reader
// costs"). The framer used to gather a line's bytes in a Swift array,
// make it visible with `sanitizeLine` (another array), cut it with
// `cutAtCharacter` (a third) and hand it out in a list: two pages of heap
// in every reader whose client had spoken. Here the line is made visible
// byte by byte, as it comes, into one buffer the spawner allocated before
// the fork, and the reader's record ("17 say hello\n") is put together
// around it in place.
//
// What comes out is byte for byte what `cutAtCharacter(sanitizeLine(raw),
// RoomLimits.lineBytes)` makes of the whole line (Text/PeerText.swift; the
// unit tests compare the two on many inputs): a line is made visible from
// left to right, and cutting it keeps the longest prefix that ends between
// two characters, so the cleaner keeps each piece while it fits and stops
// at the first that does not.

/// Where a line is made visible: `headRoom` bytes for the record's head,
/// then the line's text (at most `RoomLimits.lineBytes` bytes), then its
/// "\n".
struct LineCleaner {
  /// Room for "ID say " or "ID cut " in front of the text: a client number
  /// of up to 18 digits (RoomSpawner.parse) and 5 bytes.
  static let headRoom = 32
  /// The bytes a cleaner's storage must have.
  static let storageBytes = headRoom + RoomLimits.lineBytes + 1

  let storage: UnsafeMutableRawBufferPointer
  /// Visible bytes kept, from `storage[headRoom]` on.
  private(set) var count = 0
  /// Some of the visible line did not fit: the line is cut.
  private(set) var overflow = false
  /// The client's bytes taken into this line (what `sanitizeLine` would
  /// have been given).
  private(set) var rawCount = 0
  /// The first bytes of a UTF-8 sequence, waiting for the rest.
  private var sequence: (UInt8, UInt8, UInt8) = (0, 0, 0)
  private var sequenceCount = 0
  private var sequenceLength = 0
  /// A "\r" came last: the line's end if a "\n" follows, ^M if anything else does.
  private var returnWaits = false

  init(storage: UnsafeMutableRawBufferPointer) {
    precondition(storage.count >= Self.storageBytes)
    self.storage = storage
  }

  /// The visible line so far.
  var text: UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: storage[Self.headRoom..<Self.headRoom + count])
  }

  /// Takes one byte of the client's line (never its "\n").
  mutating func take(_ byte: UInt8) {
    rawCount += 1
    if returnWaits {
      returnWaits = false
      put(UInt8(ascii: "^"))
      put(UInt8(ascii: "M"))
    }
    if sequenceCount > 0 { return continueSequence(byte) }
    takeFirst(byte)
  }

  /// The line has ended: a "\r" that came last is its end (telnet's
  /// "\r\n", or a line ended by silence) unless `keepReturn` (a line cut
  /// at the limit: its "\r" is text, ^M); a UTF-8 sequence its end cut
  /// short is shown byte by byte (<E6><BC>).
  mutating func endLine(keepReturn: Bool) {
    if returnWaits {
      returnWaits = false
      if keepReturn {
        put(UInt8(ascii: "^"))
        put(UInt8(ascii: "M"))
      }
    }
    if sequenceCount > 0 { showSequenceBytes() }
  }

  /// Forgets the line: the next byte starts another.
  mutating func reset() {
    count = 0
    overflow = false
    rawCount = 0
    sequenceCount = 0
    returnWaits = false
  }

  /// A byte that does not continue a sequence: shown as `appendVisible`
  /// (Text/PeerText.swift) shows it.
  private mutating func takeFirst(_ byte: UInt8) {
    if byte == 9 || (byte >= 32 && byte < 127) { return put(byte) }
    if byte == 13 {
      returnWaits = true
      return
    }
    if byte < 32 || byte == 127 {
      put(UInt8(ascii: "^"))
      put(byte ^ 0x40)
      return
    }
    let length = UTF8Sequence.shape(byte).length
    if length == 0 { return putHexByte(byte) }  // never the start of a character
    sequence = (byte, 0, 0)
    sequenceCount = 1
    sequenceLength = length
  }

  private mutating func continueSequence(_ byte: UInt8) {
    let range = sequenceCount == 1 ? UTF8Sequence.shape(sequence.0).second : 0x80...0xBF
    guard range.contains(byte) else {
      // Not valid UTF-8: its bytes are shown one by one, and this byte
      // starts afresh (as `appendVisible` moves on by one byte).
      showSequenceBytes()
      return takeFirst(byte)
    }
    sequenceCount += 1
    guard sequenceCount == sequenceLength else {
      if sequenceCount == 2 { sequence.1 = byte } else { sequence.2 = byte }
      return
    }
    sequenceCount = 0
    var bytes: (UInt8, UInt8, UInt8, UInt8) = (sequence.0, sequence.1, sequence.2, 0)
    withUnsafeMutableBytes(of: &bytes) { $0[sequenceLength - 1] = byte }
    withUnsafeBytes(of: bytes) { character in
      let character = UnsafeRawBufferPointer(rebasing: character[..<sequenceLength])
      let scalar = UTF8Sequence.decode(character, at: 0, length: sequenceLength)
      if isShownAsCodePoint(scalar) {
        put(UInt8(ascii: "<"))
        put(UInt8(ascii: "U"))
        put(UInt8(ascii: "+"))
        putHex(scalar, digits: 4)
        put(UInt8(ascii: ">"))
      } else {
        putCharacter(character)
      }
    }
  }

  /// The bytes of a sequence that broke off, each as <XX>.
  private mutating func showSequenceBytes() {
    let waiting = sequenceCount
    sequenceCount = 0
    putHexByte(sequence.0)
    if waiting > 1 { putHexByte(sequence.1) }
    if waiting > 2 { putHexByte(sequence.2) }
  }

  /// One byte of ASCII, if it fits; the first that does not cuts the line.
  private mutating func put(_ byte: UInt8) {
    if overflow { return }
    guard count < RoomLimits.lineBytes else {
      overflow = true
      return
    }
    storage[Self.headRoom + count] = byte
    count += 1
  }

  /// A character of several bytes, whole or not at all.
  private mutating func putCharacter(_ bytes: UnsafeRawBufferPointer) {
    if overflow { return }
    guard count + bytes.count <= RoomLimits.lineBytes else {
      overflow = true
      return
    }
    for byte in bytes {
      storage[Self.headRoom + count] = byte
      count += 1
    }
  }

  private mutating func putHexByte(_ byte: UInt8) {
    put(UInt8(ascii: "<"))
    putHex(UInt32(byte), digits: 2)
    put(UInt8(ascii: ">"))
  }

  /// `value` in upper-case hexadecimal, at least `digits` digits (as `appendHex`).
  private mutating func putHex(_ value: UInt32, digits: Int) {
    forEachHexDigit(value, digits: digits) { put($0) }
  }
}

/// A line the framer has found, valid only during the call that hands it
/// out: its text lives in the framer's storage.
struct FoundLine {
  fileprivate let storage: UnsafeMutableRawBufferPointer
  /// Bytes of visible text.
  let count: Int
  /// True when the client's line was longer than the limit and was cut.
  let cut: Bool

  var text: UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: storage[LineCleaner.headRoom..<LineCleaner.headRoom + count])
  }

  /// The reader's record of this line ("17 say hello\n", or "17 cut ..."),
  /// put together around the text in the storage: one write(2).
  func record(client: Int) -> UnsafeRawBufferPointer {
    let word: StaticString = cut ? " cut " : " say "
    var digits = 1
    var rest = client / 10
    while rest > 0 {
      digits += 1
      rest /= 10
    }
    let start = LineCleaner.headRoom - word.utf8CodeUnitCount - digits
    _ = RoomRecord.decimal(client, into: UnsafeMutableRawBufferPointer(rebasing: storage[start...]))
    var index = start + digits
    for byte in word.utf8Bytes {
      storage[index] = byte
      index += 1
    }
    storage[LineCleaner.headRoom + count] = 10
    return UnsafeRawBufferPointer(rebasing: storage[start...(LineCleaner.headRoom + count)])
  }

  /// The line as a value of its own (the tests' and `LineFramer`'s).
  var roomLine: RoomLine { RoomLine(text: Array(text), cut: cut) }
}

/// What the framer finds in a client's bytes.
enum FoundInput {
  case line(FoundLine)
  case telnet(TelnetReply)
}

/// `LineFramer`'s rules (RoomText.swift), with the line made visible into
/// `storage` as its bytes come: what the reader process runs.
///
/// The reader reads its client's bytes into the same page, just past the
/// line made visible so far (`readSpace`): a line is seldom longer once
/// visible than as it came, so the line grows behind the bytes it is made
/// of, and a reader whose client sends lines owns one page, not two. When
/// a line grows faster (control characters, bad UTF-8: ^[ and <9B> take
/// more bytes than they came in) and would overtake the bytes not taken
/// yet, those are first moved to the end of the page, or, when even there
/// the line would reach them, to the spare page, which only such a line
/// writes.
struct InPlaceFramer {
  private var cleaner: LineCleaner
  private let spare: UnsafeMutableRawBufferPointer?
  private var discarding = false
  private var telnet = TelnetFilter()

  /// Bytes kept free between the line so far and the next read: taking
  /// one byte may add up to `margin` to the line (a broken sequence shown
  /// as <F0><9F><98>, then the byte that broke it as <FF>).
  static let gap = 32
  static let margin = 16
  /// A read into the line's page has at least this much room, else it
  /// goes to the spare page. Past the longest line (4000 bytes) 32 are
  /// left: a long line's last bytes may take a small read, one read(2)
  /// more for such a line rather than a second page (a read of 4032
  /// bytes follows once it is cut).
  static let minimumRead = 32

  /// `storage`: at least `LineCleaner.storageBytes` bytes, the caller's;
  /// `spare`, if the caller reads into `readSpace`: a page to move unread
  /// bytes to.
  init(storage: UnsafeMutableRawBufferPointer, spare: UnsafeMutableRawBufferPointer? = nil) {
    cleaner = LineCleaner(storage: storage)
    self.spare = spare
  }

  /// Whether bytes of an unfinished line are waiting.
  var hasPartial: Bool { cleaner.rawCount > 0 }

  /// Where the next read(2) should put the client's bytes: in the line's
  /// page, `gap` bytes past the line so far, if at least `minimumRead`
  /// bytes are left there; else the spare page.
  func readSpace() -> UnsafeMutableRawBufferPointer {
    let start = LineCleaner.headRoom + cleaner.count + Self.gap
    guard let spare, cleaner.storage.count - start < Self.minimumRead else {
      return UnsafeMutableRawBufferPointer(rebasing: cleaner.storage[start...])
    }
    return spare
  }

  /// Takes the next bytes from the client; hands `found` the lines they
  /// end and the telnet answers they call for, in order. `bytes` may lie
  /// in the line's page (`readSpace`).
  mutating func feed(_ bytes: UnsafeRawBufferPointer, _ found: (FoundInput) -> Void) {
    var input = bytes
    var index = 0
    while index < input.count {
      if let spare, let unread = offsetInStorage(input, index + 1),
        LineCleaner.headRoom + cleaner.count + Self.margin > unread
      {
        // The line would overtake what is not read yet: move that to the
        // end of the page if that leaves room enough, else to the spare page.
        let rest = input.count - index
        let end = cleaner.storage.count - rest
        let target =
          end > unread - 1 && LineCleaner.headRoom + cleaner.count + Self.margin <= end + 1
          ? UnsafeMutableRawBufferPointer(rebasing: cleaner.storage[end...]) : spare
        memmove(target.baseAddress!, input.baseAddress! + index, rest)
        input = UnsafeRawBufferPointer(rebasing: target[..<rest])
        index = 0
      }
      let byte = input[index]
      index += 1
      switch telnet.take(byte) {
      case .data(let byte): take(byte, found)
      case .answer(let reply): found(.telnet(reply))
      case .interrupt: discardPartial()
      case .none: break
      }
    }
  }

  /// Where `bytes[index]` lies in the line's page, or nil if `bytes` is elsewhere.
  private func offsetInStorage(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> Int? {
    guard let base = bytes.baseAddress, let page = cleaner.storage.baseAddress,
      base >= UnsafeRawPointer(page), base < UnsafeRawPointer(page + cleaner.storage.count)
    else { return nil }
    return base - UnsafeRawPointer(page) + index
  }

  private mutating func take(_ byte: UInt8, _ found: (FoundInput) -> Void) {
    if byte == 10 {  // "\n"
      if discarding {
        discarding = false
      } else {
        finish(found)
      }
      return
    }
    if discarding { return }
    if cleaner.rawCount == RoomLimits.lineBytes + 1 {  // room for a final "\r"
      cleaner.endLine(keepReturn: true)
      found(.line(FoundLine(storage: cleaner.storage, count: cleaner.count, cut: true)))
      cleaner.reset()
      discarding = true
      return
    }
    cleaner.take(byte)
  }

  /// The client has been silent, or has closed: what it sent without a
  /// newline is a line.
  mutating func flushPartial(_ found: (FoundInput) -> Void) {
    discarding = false
    finish(found)
  }

  /// The connection was reset in the middle of a line, or the user
  /// interrupted it: the half line goes.
  mutating func discardPartial() {
    cleaner.reset()
    discarding = false
  }

  private mutating func finish(_ found: (FoundInput) -> Void) {
    defer { cleaner.reset() }
    cleaner.endLine(keepReturn: false)
    if cleaner.count == 0 { return }  // an empty line is no line
    found(.line(FoundLine(storage: cleaner.storage, count: cleaner.count, cut: cleaner.overflow)))
  }
}
