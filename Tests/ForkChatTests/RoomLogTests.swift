import ForkChat
import Testing

@Suite("Room: the log and its cursors")
struct RoomLogTests {
  /// What `client` would receive from `cursor` on, handed in stretches of
  /// at most `maxBytes`, as the hub sends it: returns the bytes and the
  /// number of stretches of the first call.
  func receive(
    _ log: RoomLog, _ client: Int, from cursor: inout LogPosition, before limit: LogPosition? = nil,
    maxBytes: Int = 1 << 20, socketTakes: Int = .max, rounds: Int = .max
  ) -> (bytes: [UInt8], stretches: Int) {
    var bytes: [UInt8] = []
    var stretches = 0
    var first = true
    var round = 0
    _ = log.skip(&cursor, for: client)
    while log.hasLines(after: cursor, before: limit), round < rounds {
      round += 1
      var offered: [UInt8] = []
      log.forEachStretch(for: client, from: cursor, before: limit, maxBytes: maxBytes) { stretch in
        offered += stretch
        if first { stretches += 1 }
        return true
      }
      first = false
      let taken = min(offered.count, socketTakes)
      bytes += offered[..<taken]
      log.advance(&cursor, by: taken, for: client)
    }
    return (bytes, stretches)
  }

  func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

  @Test func everyClientGetsTheLinesForItInOneOrder() {
    var log = RoomLog(bytes: 1 << 20)
    var ana = log.end
    var bob = log.end
    log.append(Array("* cleo joined\n".utf8), for: .everyone)
    log.append(Array("ana: hi\n".utf8), for: .everyoneBut(1))
    log.append(Array("* 3 here\n".utf8), for: .only(2))
    log.append(Array("bob: hello\n".utf8), for: .everyoneBut(2))
    #expect(text(receive(log, 1, from: &ana).bytes) == "* cleo joined\nbob: hello\n")
    #expect(text(receive(log, 2, from: &bob).bytes) == "* cleo joined\nana: hi\n* 3 here\n")
    #expect(ana == log.end && bob == log.end)
    // A newcomer gets only what comes after it joined.
    var cleo = log.end
    log.append(Array("ana: welcome\n".utf8), for: .everyoneBut(1))
    #expect(text(receive(log, 3, from: &cleo).bytes) == "ana: welcome\n")
  }

  @Test func adjacentLinesGoOutAsOneStretch() {
    var log = RoomLog(bytes: 1 << 20)
    var cursor = log.end
    for k in 0..<10 { log.append(Array("line \(k)\n".utf8), for: .everyoneBut(k == 4 ? 7 : 1)) }
    // Client 7 does not get line 4: two stretches; client 2 gets all ten: one.
    var other = cursor
    #expect(receive(log, 7, from: &cursor).stretches == 2)
    #expect(receive(log, 2, from: &other).stretches == 1)
  }

  @Test func aSocketThatTakesAFewBytesAtATimeGetsEveryByteInOrder() {
    var log = RoomLog(bytes: 1 << 20)
    var slow = log.end
    var expected: [UInt8] = []
    for k in 0..<500 {
      let line = Array("sender-\(k % 3): \(String(repeating: "x", count: k % 97))\n".utf8)
      log.append(line, for: .everyoneBut(k % 3))
      if k % 3 != 1 { expected += line }
    }
    #expect(receive(log, 1, from: &slow, maxBytes: 1000, socketTakes: 7).bytes == expected)
  }

  @Test func linesSpanBlocksAndTrimFreesWhatEveryoneHas() {
    var log = RoomLog(bytes: 8 * RoomLog.blockCost)
    var ahead = log.end
    var behind = log.end
    let line = [UInt8](repeating: 65, count: 999) + [10]
    var evicted = false
    for _ in 0..<200 { evicted = log.append(line, for: .everyone) || evicted }  // 200 KB: four blocks
    #expect(!evicted)
    #expect(log.memory == 4 * RoomLog.blockCost && log.lineBytes == 200 * 1000)
    #expect(receive(log, 1, from: &ahead).bytes.count == 200 * 1000)
    _ = receive(log, 2, from: &behind, socketTakes: 70_000, rounds: 1)  // 70 KB: into block 1
    log.trim(before: min(ahead, behind))
    #expect(log.memory == 3 * RoomLog.blockCost && log.start.block == 1)
    var rest = behind
    _ = receive(log, 2, from: &rest)
    log.trim(before: min(ahead, rest))
    #expect(log.memory == RoomLog.blockCost)  // the block being filled stays
    #expect(log.start.block == 3)
  }

  @Test func aFullLogEvictsItsOldestBlockAndSaysSo() {
    var log = RoomLog(bytes: 3 * RoomLog.blockCost)
    let stalled = log.end
    var reader = log.end
    let line = [UInt8](repeating: 66, count: 4095) + [10]
    var evictions = 0
    for _ in 0..<64 {
      if log.append(line, for: .everyone) { evictions += 1 }
      _ = receive(log, 1, from: &reader)
    }
    // 64 lines of 4 KiB: 16 a block, 4 blocks; the log holds 3.
    #expect(evictions == 1 && log.memory == 3 * RoomLog.blockCost)
    #expect(stalled < log.start && !(reader < log.start))
    var lost = stalled
    #expect(!log.skip(&lost, for: 2))  // a whole log behind
  }

  @Test func manyShortLinesFillABlockByCount() {
    var log = RoomLog(bytes: 4 * RoomLog.blockCost)
    for _ in 0..<(RoomLog.linesPerBlock + 1) { log.append(Array("x\n".utf8), for: .everyone) }
    #expect(log.memory == 2 * RoomLog.blockCost)
  }

  @Test func aLeavingClientGetsTheLogUpToItsLimit() {
    var log = RoomLog(bytes: 1 << 20)
    var leaving = log.end
    log.append(Array("* bye, ana\n".utf8), for: .only(1))
    let limit = log.end
    log.append(Array("* ana left\n".utf8), for: .everyone)
    #expect(text(receive(log, 1, from: &leaving, before: limit).bytes) == "* bye, ana\n")
    #expect(!log.hasLines(after: leaving, before: limit))
  }

  @Test func theFloodBurstIsEachClientsShareOfTheLog() {
    // 1000 clients bursting at once fill at most the log.
    for (mib, clients) in [(64, 1000), (16, 1000), (1, 50), (64, 10)] {
      let burst = RoomLimits.floodBurst(logBytes: mib << 20, maxClients: clients)
      let usable = RoomLog.usableBytes(mib << 20, longestLine: RoomLimits.longestLogLine)
      #expect(burst * clients <= usable || burst == RoomLimits.floodLineCost)
      #expect(burst <= RoomLimits.maxFloodBurst && burst % 1024 == 0)
    }
    #expect(RoomLimits.floodBurst(logBytes: 64 << 20, maxClients: 100) == 64 * 1024)
  }

  @Test func everyClientBurstingAtOnceFitsInTheLog() {
    // The flood-control argument, run: every client of a full room sends
    // what its bucket lets through at once, in the lines that fill the log
    // worst (short ones fill a block by count, the longest leave a gap at
    // each block's end): the log never has to let a block go.
    let (logBytes, clients) = (1 << 20, 50)
    let burst = RoomLimits.floodBurst(logBytes: logBytes, maxClients: clients)
    for length in [1, 229, 2000, RoomLimits.lineBytes] {
      var log = RoomLog(bytes: logBytes)
      let line = RoomLine(text: [UInt8](repeating: 65, count: length))
      let logged = [UInt8](repeating: 65, count: length + RoomLimits.prefixBytes)  // "NAME: ", text, "\n"
      var evicted = false
      for _ in 0..<clients {
        var bucket = TokenBucket(capacity: burst, rate: RoomLimits.floodRate, now: 0)
        while bucket.delay(cost: RoomLimits.cost(of: line), now: 0) == 0 {
          evicted = log.append(logged, for: .everyone) || evicted
        }
      }
      #expect(!evicted, "lines of \(length) bytes")
    }
  }

  @Test func aLineCostsAtLeastWhatItAddsToTheLog() {
    let short = RoomLine(text: Array("hi".utf8))
    #expect(RoomLimits.cost(of: short) == RoomLimits.floodLineCost)
    let long = RoomLine(text: [UInt8](repeating: 65, count: 4000), cut: true)
    #expect(RoomLimits.cost(of: long) == 4000 + RoomLimits.prefixBytes + RoomLimits.cutNotice.utf8.count)
    // /who may answer with a long list; /help with the table.
    #expect(RoomLimits.cost(of: RoomLine(text: Array("/who".utf8))) > RoomLimits.lineBytes)
    #expect(RoomLimits.cost(of: RoomLine(text: Array("/HELP".utf8))) == RoomCommand.help.utf8.count)
    #expect(RoomLimits.cost(of: RoomLine(text: Array("//who".utf8))) == RoomLimits.floodLineCost)
  }

  @Test func helpComesFromTheCommandTable() {
    let lines = RoomCommand.help.split(separator: "\n")
    #expect(lines.count == RoomCommand.all.count + 1)
    #expect(lines[0] == "* /nick NAME   take a name: letters, digits, '-', '_', '.', at most 24 bytes")
    #expect(lines[1] == "* /who         who is here")
  }
}
