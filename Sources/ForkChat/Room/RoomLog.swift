// The room's log: every line the hub sends, stored once, in the one order
// in which every client receives them; each client has a cursor into it.
//
//   blocks:   [ block 7 ][ block 8 ][ block 9 ][ block 10 (filling) ]
//               ▲ first                                    ▲ end
//   cursors:    ana (block 7)      bob (block 9)   cleo (at the end)
//
// Lines go in at the end. A client receives what lies between its cursor
// and the end, as its socket takes it. A block is freed once every cursor
// has passed it (`trim`); if the log is full, its oldest block goes
// anyway (`append` evicts it), and a client whose cursor was in it is a
// whole log behind: the hub drops it. So the room's memory is the log's
// capacity at most, whatever the number of clients.
//
// A line is stored once, with its audience: everyone, everyone but its
// sender, or one client (a reply). Lines that lie side by side in a block
// and are all for the same client go out as one stretch: one send(2), or
// one piece of a sendmsg(2) when there are several (RoomSending.swift).

/// Who receives a line of the log.
public enum Audience: Equatable, Sendable {
  case everyone
  /// A client's line: everyone else (a sender does not get its own line back).
  case everyoneBut(Int)
  /// A reply, a notice or a telnet answer for one client.
  case only(Int)

  public func includes(_ client: Int) -> Bool {
    switch self {
    case .everyone: true
    case .everyoneBut(let sender): client != sender
    case .only(let receiver): client == receiver
    }
  }
}

/// A place in the log: before the byte `offset` of line `index` of block
/// `block` (block numbers grow for ever; a line's index counts from 0 in
/// its block).
public struct LogPosition: Comparable, Sendable {
  public var block: Int
  public var index: Int
  public var offset: Int

  public static func < (a: LogPosition, b: LogPosition) -> Bool {
    (a.block, a.index, a.offset) < (b.block, b.index, b.offset)
  }

  /// The start of the next line.
  mutating func nextLine() {
    index += 1
    offset = 0
  }
}

public struct RoomLog {
  /// Bytes of lines in one block.
  public static let blockBytes = 64 * 1024
  /// Lines in one block at most (many short lines fill a block this way).
  public static let linesPerBlock = 512
  /// What one block costs, its lines' records included: the log's
  /// capacity is a number of blocks.
  public static let blockCost = blockBytes + linesPerBlock * MemoryLayout<Line>.stride

  /// A line's place in its block, and who gets it.
  struct Line {
    let start: Int32
    let count: Int32
    let audience: Audience
  }

  /// One block: its bytes, and the records of the lines stored in them.
  final class Block {
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: RoomLog.blockBytes, alignment: 16)
    var used = 0
    var lines: [Line] = []

    init() { lines.reserveCapacity(RoomLog.linesPerBlock) }
    deinit { bytes.deallocate() }

    func fits(_ count: Int) -> Bool {
      used + count <= RoomLog.blockBytes && lines.count < RoomLog.linesPerBlock
    }
  }

  /// The most blocks the log holds.
  public let maxBlocks: Int
  private var blocks: [Block] = [Block()]
  /// The number of `blocks[0]`.
  public private(set) var firstBlock = 0

  /// A log of at most `bytes` bytes (lines and their records), two blocks
  /// at least.
  public init(bytes: Int) {
    maxBlocks = max(2, bytes / Self.blockCost)
  }

  /// The place of the oldest line held.
  public var start: LogPosition { LogPosition(block: firstBlock, index: 0, offset: 0) }
  /// The place after the newest line: where a newcomer's cursor starts.
  public var end: LogPosition {
    LogPosition(block: firstBlock + blocks.count - 1, index: blocks[blocks.count - 1].lines.count, offset: 0)
  }
  /// Bytes held, as counted against the capacity.
  public var memory: Int { blocks.count * Self.blockCost }
  /// Bytes of lines held.
  public var lineBytes: Int { blocks.reduce(0) { $0 + $1.used } }

  /// What a log of `bytes` holds at least, counted as flood control counts
  /// lines (`RoomLimits.cost`): a block takes lines until its bytes are
  /// full but for less than the longest line, or until it holds 512 lines,
  /// each of which costs at least 256 bytes (more than a block's bytes).
  public static func usableBytes(_ bytes: Int, longestLine: Int) -> Int {
    max(2, bytes / blockCost) * (blockBytes - longestLine)
  }

  // MARK: Writing

  /// Appends `bytes` (one line, or a few lines as one piece) for
  /// `audience`. If the log is full, its oldest block is evicted first:
  /// returns true then, and the caller must drop every client whose cursor
  /// lies before `start`.
  @discardableResult
  public mutating func append(_ bytes: [UInt8], for audience: Audience) -> Bool {
    precondition(!bytes.isEmpty && bytes.count <= Self.blockBytes, "a log line of \(bytes.count) bytes")
    var evicted = false
    if !blocks[blocks.count - 1].fits(bytes.count) {
      if blocks.count == maxBlocks {
        blocks.removeFirst()
        firstBlock += 1
        evicted = true
      }
      blocks.append(Block())
    }
    let block = blocks[blocks.count - 1]
    bytes.withUnsafeBytes {
      block.bytes.baseAddress!.advanced(by: block.used).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
    }
    block.lines.append(Line(start: Int32(block.used), count: Int32(bytes.count), audience: audience))
    block.used += bytes.count
    return evicted
  }

  /// Frees the blocks that lie wholly before `position` (the cursor of the
  /// client furthest behind); the block being filled stays.
  public mutating func trim(before position: LogPosition) {
    let free = min(position.block - firstBlock, blocks.count - 1)
    guard free > 0 else { return }
    blocks.removeFirst(free)
    firstBlock += free
  }

  // MARK: Reading

  /// The line at `position`, and where its bytes are; a position after
  /// the last line of a block moves to the start of the next block. Nil at
  /// the end of the log.
  private func line(at position: inout LogPosition) -> (line: Line, bytes: UnsafeRawPointer)? {
    while position.block < firstBlock + blocks.count {
      let block = blocks[position.block - firstBlock]
      if position.index < block.lines.count {
        let line = block.lines[position.index]
        return (line, UnsafeRawPointer(block.bytes.baseAddress! + Int(line.start)))
      }
      if position.block == firstBlock + blocks.count - 1 { return nil }
      position = LogPosition(block: position.block + 1, index: 0, offset: 0)
    }
    return nil
  }

  /// Moves `cursor` over the lines that are not for `client`, so that it
  /// rests on the next line for it, or at the end. Returns false if the
  /// cursor lies before `start`: the client is a whole log behind.
  public func skip(_ cursor: inout LogPosition, for client: Int) -> Bool {
    guard cursor.block >= firstBlock else { return false }
    while let found = line(at: &cursor), !found.line.audience.includes(client) { cursor.nextLine() }
    return true
  }

  /// Whether lines for `client` lie between `cursor` and `limit` (the end
  /// of the log if nil). `cursor` must have been moved by `skip`.
  public func hasLines(after cursor: LogPosition, before limit: LogPosition? = nil) -> Bool {
    cursor < min(limit ?? end, end)
  }

  /// Hands `body` the bytes for `client` from `cursor` on, in stretches of
  /// adjacent lines, until `body` (which takes each stretch) returns false,
  /// `maxBytes` are handed, or `limit` (the end of the log if nil) is
  /// reached. The cursor does not move: `advance` does, by what was sent.
  public func forEachStretch(
    for client: Int, from cursor: LogPosition, before limit: LogPosition? = nil, maxBytes: Int,
    _ body: (UnsafeRawBufferPointer) -> Bool
  ) {
    let limit = min(limit ?? end, end)
    var position = cursor
    var pending: UnsafeRawBufferPointer? = nil
    var handed = 0
    while handed < maxBytes, let found = line(at: &position), position < limit {
      if found.line.audience.includes(client) {
        let start = found.bytes + position.offset
        let count = Int(found.line.count) - position.offset
        if let last = pending, last.baseAddress! + last.count == start {
          pending = UnsafeRawBufferPointer(start: last.baseAddress, count: last.count + count)
        } else {
          if let last = pending, !body(last) { return }
          pending = UnsafeRawBufferPointer(start: start, count: count)
        }
        handed += count
      }
      position.nextLine()
    }
    if let last = pending { _ = body(last) }
  }

  /// Moves `cursor` over `count` bytes of the lines for `client` (what its
  /// socket took), then over the lines that are not for it.
  public func advance(_ cursor: inout LogPosition, by count: Int, for client: Int) {
    var left = count
    while left > 0, let found = line(at: &cursor) {
      if found.line.audience.includes(client) {
        let rest = Int(found.line.count) - cursor.offset
        if left < rest {
          cursor.offset += left
          return
        }
        left -= rest
      }
      cursor.nextLine()
    }
    _ = skip(&cursor, for: client)
  }
}
