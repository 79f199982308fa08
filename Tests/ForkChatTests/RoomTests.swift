import ForkChat
import Testing

@testable import ForkChatCommand

@Suite("Room: lines, names, records")
struct RoomTextTests {
  func inputs(_ chunks: [[UInt8]]) -> (inputs: [ClientInput], framer: LineFramer) {
    var framer = LineFramer()
    var found: [ClientInput] = []
    for chunk in chunks { found += chunk.withUnsafeBytes { framer.feed($0) } }
    return (found, framer)
  }

  func lines(_ chunks: [[UInt8]]) -> (lines: [RoomLine], framer: LineFramer) {
    let (found, framer) = inputs(chunks)
    return (found.compactMap { if case .line(let line) = $0 { line } else { nil } }, framer)
  }

  func texts(_ chunks: [String]) -> [String] {
    lines(chunks.map { Array($0.utf8) }).lines.map { String(decoding: $0.text, as: UTF8.self) }
  }

  @Test func linesAcrossReads() {
    #expect(texts(["hel", "lo\nwor", "ld\n", "\n", "x"]) == ["hello", "world"])
  }

  @Test func crlfAndEmptyLines() {
    #expect(texts(["a\r\n", "\r\n", "b\r", "\n"]) == ["a", "b"])
  }

  @Test func partialLineIsFlushedOrDiscarded() {
    var (found, framer) = lines([Array("no newline".utf8)])
    #expect(found.isEmpty && framer.hasPartial)
    #expect(framer.flushPartial() == RoomLine(text: Array("no newline".utf8)))
    #expect(!framer.hasPartial)
    (found, framer) = lines([Array("half a li".utf8)])
    framer.discardPartial()
    #expect(!framer.hasPartial)
    #expect(framer.flushPartial() == nil)
  }

  @Test func longLineIsCutOnceAndTheRestSkipped() {
    let long = [UInt8](repeating: UInt8(ascii: "x"), count: 10_000) + Array("\nnext\n".utf8)
    let (found, _) = lines([Array(long[..<3000]), Array(long[3000...])])
    #expect(found.count == 2)
    #expect(found[0].cut && found[0].text.count == RoomLimits.lineBytes)
    #expect(found[1] == RoomLine(text: Array("next".utf8)))
    // Exactly the limit, with telnet's "\r\n": not cut.
    let exact = [UInt8](repeating: UInt8(ascii: "y"), count: RoomLimits.lineBytes) + [13, 10]
    #expect(lines([exact]).lines == [RoomLine(text: Array(exact.dropLast(2)))])
  }

  @Test func telnetCommandsAreNeverText() {
    // IAC IP, IAC DO TIMING-MARK, a subnegotiation, then text.
    let bytes: [UInt8] = [255, 244, 255, 253, 6] + Array("hi".utf8) + [255, 250, 24, 1, 255, 240] + [10]
    #expect(lines([bytes]).lines == [RoomLine(text: Array("hi".utf8))])
  }

  @Test func telnetTimingMarkIsAnsweredInOrder() {
    // A line, then telnet's Ctrl-C (IAC IP, IAC DO TIMING-MARK), then a line:
    // the mark is answered WILL between the two (RFC 860).
    let bytes = Array("before\r\n".utf8) + [255, 244, 255, 253, 6] + Array("after\r\n".utf8)
    let (found, _) = inputs([Array(bytes[..<9]), Array(bytes[9..<12]), Array(bytes[12...])])
    #expect(
      found == [
        .line(RoomLine(text: Array("before".utf8))), .telnet(TelnetReply(.will, 6)),
        .line(RoomLine(text: Array("after".utf8))),
      ])
    #expect(TelnetReply(.will, 6).bytes == [255, 251, 6])
  }

  @Test func telnetOtherNegotiationsAreRefused() {
    // DO ECHO → WONT ECHO; WILL TERMINAL-TYPE → DONT; WONT and DONT: no answer.
    let (found, _) = inputs([[255, 253, 1, 255, 251, 24, 255, 252, 3, 255, 254, 1]])
    #expect(found == [.telnet(TelnetReply(.wont, 1)), .telnet(TelnetReply(.dont, 24))])
  }

  @Test func telnetInterruptDropsTheLineBeingTyped() {
    // "half", then IAC IP (or IAC BRK): the half line goes; IAC IAC is a byte 255.
    #expect(
      lines([Array("half".utf8), [255, 244], Array("whole\n".utf8)]).lines == [
        RoomLine(text: Array("whole".utf8))
      ])
    let (found, _) = lines([Array("a".utf8) + [255, 243] + Array("b".utf8) + [255, 255] + [10]])
    #expect(found == [RoomLine(text: Array("b<FF>".utf8))])
  }

  @Test func sanitizeControlsAndInvalidUTF8() {
    // The two-party chat's convention (PeerText): ^X, <U+XXXX>, <XX>.
    func shown(_ bytes: [UInt8]) -> String { String(decoding: sanitizeLine(bytes), as: UTF8.self) }
    #expect(shown([0x1B] + Array("[2J".utf8)) == "^[[2J")
    #expect(shown([0, 9, 0x7F, 13, 10]) == "^@\t^?^M^J")
    #expect(shown(Array("café ✓ 😀".utf8)) == "café ✓ 😀")
    #expect(shown([0xFF]) == "<FF>")
    #expect(shown([0xC3]) == "<C3>")  // truncated sequence
    #expect(shown([0xE6, 0xBC]) == "<E6><BC>")  // truncated at the end of the line
    #expect(shown([0xC0, 0xAF]) == "<C0><AF>")  // overlong "/"
    #expect(shown([0xED, 0xA0, 0x80]) == "<ED><A0><80>")  // surrogate
    #expect(shown([0xE2, 0x82, 0x41]) == "<E2><82>A")
    #expect(shown([0xC2, 0x9B]) == "<U+009B>")  // C1 CSI
    #expect(shown([0xE2, 0x80, 0xAE]) == "<U+202E>")  // RIGHT-TO-LEFT OVERRIDE
    #expect(shown([0xE2, 0x81, 0xA6]) == "<U+2066>")
  }

  @Test func roomAndChatShowALineAlike() {
    let line: [UInt8] =
      Array("a".utf8) + [0x1B, 0x9B, 0xC2, 0x9B, 0xE2, 0x80, 0xAE, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 9]
    var chat = PeerText()
    #expect(chat.feed(line + [10]) == [sanitizeLine(line)])
    #expect(sanitizeLine(line) == Array("a^[<9B><U+009B><U+202E>😀<FF>\t".utf8))
  }

  @Test func cutNeverSplitsACharacter() {
    let text = Array("aé".utf8)  // 61 C3 A9
    #expect(cutAtCharacter(text, 2) == Array("a".utf8))
    #expect(cutAtCharacter(text, 3) == text)
  }

  @Test func names() {
    func check(_ name: String) -> Result<String, NameProblem> { validateName(Array(name.utf8)) }
    #expect(check("alice") == .success("alice"))
    #expect(check("Zoé_2.0-b") == .success("Zoé_2.0-b"))
    #expect(check("") == .failure(.empty))
    #expect(check(String(repeating: "a", count: RoomLimits.nameBytes + 1)) == .failure(.tooLong))
    #expect(check("two words") == .failure(.badCharacter))
    #expect(check("^[[2J") == .failure(.badCharacter))
    #expect(check("a*b") == .failure(.badCharacter))
    #expect(check("bad\u{FFFD}") == .failure(.badCharacter))
    #expect(check("Guest-12") == .failure(.reserved))
    #expect(check("guest-x") == .success("guest-x"))
    #expect(nameKey("Alice") == nameKey("aLICE"))
  }

  @Test func recordsRoundTrip() {
    let records: [RoomRecord] = [
      .say(client: 17, RoomLine(text: Array("hello everyone".utf8))),
      .say(client: 3, RoomLine(text: Array("cut line".utf8), cut: true)),
      .slow(client: 9),
      .telnet(client: 8, TelnetReply(.will, 6)),
      .bye(client: 4, reason: "Connection timed out"),
      .gone(client: 5, how: "signaled SIGKILL"),
    ]
    for record in records + [.start(client: 1_000_000), .say(client: 0, RoomLine(text: Array("é".utf8)))] {
      let bytes = record.bytes
      #expect(bytes.last == 10)
      #expect(RoomRecord(bytes.dropLast()) == record)
      // What a reader writes (three pieces, from the stack) is the same record.
      let pieces = try? record.withPieces { head, text, end throws(Errno) in [UInt8](head) + text + end }
      #expect(pieces == bytes)
    }
    #expect(RoomRecord(Array("x say hi".utf8)[...]) == nil)
    #expect(RoomRecord(Array("1 what".utf8)[...]) == nil)
    #expect(RoomRecord(Array("1 telnet DO 6".utf8)[...]) == nil)
    #expect(
      String(decoding: RoomRecord.telnet(client: 8, TelnetReply(.will, 6)).bytes, as: UTF8.self)
        == "8 telnet WILL 6\n")
  }

  @Test func recordsFitInPipeBuf() {
    let line = RoomLine(text: [UInt8](repeating: 0x41, count: RoomLimits.lineBytes), cut: true)
    #expect(RoomRecord.say(client: Int(Int32.max), line).bytes.count <= 4096)
  }

  @Test func tokenBucket() {
    var bucket = TokenBucket(capacity: 1000, rate: 100, now: 0)
    #expect(bucket.delay(cost: 600, now: 0) == 0)
    #expect(bucket.delay(cost: 400, now: 0) == 0)
    #expect(bucket.delay(cost: 50, now: 0) == 0.5)  // 50 tokens short at 100/s
    #expect(!bucket.isFull(now: 1))
    #expect(bucket.isFull(now: 11))
    #expect(bucket.delay(cost: 100, now: 20) == 0)
  }
}

@Suite("Room: command line")
struct RoomArgumentsTests {
  func options(_ arguments: [String]) throws -> Options {
    guard case .run(.room, let options) = try parse(["room"] + arguments) else {
      Issue.record("not a room command")
      return Options()
    }
    return options
  }

  func reason(_ arguments: [String]) -> String? {
    do {
      _ = try parse(["room"] + arguments)
      return nil
    } catch {
      return error.reason
    }
  }

  @Test func defaultsAndOptions() throws {
    #expect(try options([]) == Options())
    let set = try options(["--max-clients", "50", "9000", "--bind=127.0.0.1", "--trace"])
    #expect(set.port == 9000 && set.room.maxClients == 50 && set.bindAddress == "127.0.0.1" && set.trace)
    let sized = try options(["--log-size", "16", "--stall=5"])
    #expect(sized.room.logMiB == 16 && sized.room.stallSeconds == 5)
    #expect(RoomOptions().logMiB == 64 && RoomOptions().stallSeconds == 60)
  }

  @Test func mistakes() {
    #expect(reason(["--max-clients", "0"])?.contains("--max-clients") == true)
    #expect(reason(["--max-clients"]) == "Missing value for '--max-clients'.")
    #expect(reason(["99999"]) == "Invalid port '99999': expected a number from 1 to 65535.")
    #expect(reason(["1", "2"]) == "Unexpected argument '2'.")
    #expect(reason(["--keep"]) == "Unknown option '--keep'.")
    #expect(reason(["--trace=yes"]) == "'--trace' takes no value.")
    // Decimal digits only.
    for bad in ["+5", "-1", "0x10", "1.5", "", "٣", "1e3", " 5"] {
      #expect(
        reason(["--stall", bad]) == "Invalid value '\(bad)' for '--stall': expected a number from 1 to 86400."
      )
    }
    #expect(
      reason(["--log-size", "0"]) == "Invalid value '0' for '--log-size': expected a number from 1 to 4096.")
    #expect(reason(["--log-size", "4097"])?.contains("1 to 4096") == true)
  }

  @Test func help() throws {
    #expect(try parse(["room", "--help"]) == .help(ForkChatCommand.help(for: .room)))
    #expect(try parse(["help", "room"]) == .help(ForkChatCommand.help(for: .room)))
    #expect(mainHelp().contains("room "))
    let roomHelp = ForkChatCommand.help(for: .room)
    #expect(roomHelp.contains("commands: /nick NAME, /who, /me ACTION, /quit, /help."))
    #expect(UsageError(reason: "x", subcommand: .room).text.contains("forkchat room --help"))
  }
}
