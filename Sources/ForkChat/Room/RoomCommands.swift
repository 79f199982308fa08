// What a client can type: the command table (which also writes /help and
// the command list of `forkchat room --help`), and what the hub does with
// each line a client sends.

/// A command a client can type.
public struct RoomCommand: Sendable {
  public let name: String
  /// What follows the name ("NAME"), or "".
  public let argument: String
  public let summary: String
  let action: Action

  enum Action: Sendable { case nick, who, me, quit, help }

  /// "/nick NAME"
  public var usage: String { argument.isEmpty ? name : "\(name) \(argument)" }

  public static let all: [RoomCommand] = [
    RoomCommand(
      name: "/nick", argument: "NAME",
      summary: "take a name: letters, digits, '-', '_', '.', at most \(RoomLimits.nameBytes) bytes",
      action: .nick),
    RoomCommand(name: "/who", argument: "", summary: "who is here", action: .who),
    RoomCommand(name: "/me", argument: "ACTION", summary: "\"NAME * ACTION\" to everyone else", action: .me),
    RoomCommand(
      name: "/quit", argument: "", summary: "leave the room (closing the connection does too)", action: .quit),
    RoomCommand(name: "/help", argument: "", summary: "this list", action: .help),
  ]

  /// What /help answers: the table, one command a line.
  public static let help =
    all.map { "* \($0.usage)\(String(repeating: " ", count: max(1, 13 - $0.usage.count)))\($0.summary)\n" }
    .joined()
    + "* Any other line goes to everyone else as \"NAME: line\";"
    + " start it with // to send a line starting with /.\n"

  /// The longest answer to /who; past it, the list ends with "and N more".
  static let whoBytes = RoomLimits.lineBytes

  /// The most bytes this command's answer may add to the log beyond what
  /// any line costs (`RoomLimits.floodLineCost`).
  var replyBytes: Int {
    switch action {
    case .who: Self.whoReplyBytes
    case .help: Self.helpReplyBytes
    case .nick, .me, .quit: 0
    }
  }

  /// The command a line starts with, with its argument (spaces trimmed);
  /// nil for a line that is no command ("//x" is the line "/x"). An
  /// unknown command comes back as its name with a nil command.
  static func parse(_ text: [UInt8]) -> (command: RoomCommand?, name: String, argument: [UInt8])? {
    guard text.first == UInt8(ascii: "/"), !text.starts(with: [UInt8(ascii: "/"), UInt8(ascii: "/")]) else {
      return nil
    }
    let space = text.firstIndex(of: 32) ?? text.endIndex
    let name = String(decoding: text[..<space], as: UTF8.self).lowercased()
    var argument = Array(text[space...])
    while argument.first == 32 { argument.removeFirst() }
    while argument.last == 32 || argument.last == 9 { argument.removeLast() }
    return (all.first { $0.name == name }, name, argument)
  }

  /// What the answer to `text`, if it is a command, may add to the log.
  public static func replyBytes(_ text: [UInt8]) -> Int {
    parse(text)?.command?.replyBytes ?? 0
  }

  /// The same without a String, an array or a retain (a
  /// reader process computes it for every line: a malloc, or a retain of
  /// a shared object, would write a page that then becomes the reader's
  /// own). Only /who and /help answer more than a line costs (the unit
  /// tests hold this to the table); their names are ASCII, and no
  /// character but their own letters lowercases (or is canonically
  /// equivalent) to "w", "h", "o", "e", "l" or "p", so comparing ASCII
  /// letters without their case finds what `parse` finds with `lowercased()`.
  static func replyBytes(_ text: UnsafeRawBufferPointer) -> Int {
    guard text.first == UInt8(ascii: "/"), !(text.count > 1 && text[1] == UInt8(ascii: "/")) else { return 0 }
    let name = UnsafeRawBufferPointer(rebasing: text[..<(text.firstIndex(of: 32) ?? text.endIndex)])
    func named(_ expected: StaticString) -> Bool {
      expected.utf8Bytes.elementsEqual(name) { $1 == $0 || ($1 >= 65 && $1 <= 90 && $1 + 32 == $0) }
    }
    if named("/who") { return whoReplyBytes }
    if named("/help") { return helpReplyBytes }
    return 0
  }

  /// What `replyBytes` of /who and /help is, counted once (the spawner's
  /// warm-up does it, before any reader is forked).
  static let whoReplyBytes = whoBytes + 40
  static let helpReplyBytes = help.utf8.count
}

extension RoomHub {
  /// A line from `member`: said to everyone else, or a command run.
  func handleLine(_ text: [UInt8], from member: Member) {
    guard let (command, name, argument) = RoomCommand.parse(text) else {
      let said = text.starts(with: Array("//".utf8)) ? text.dropFirst() : text[...]
      broadcast(Array("\(member.name): ".utf8) + said + [10], from: member)
      return
    }
    switch command?.action {
    case .nick: rename(member, argument)
    case .who: who(member)
    case .me:
      if argument.isEmpty {
        reply("* usage: /me ACTION\n", to: member)
      } else {
        // Never "* NAME ACTION": a line starting with "* " is the room's
        // own (docs/room.md), and "/me left" must not read as a leave notice.
        broadcast(Array("\(member.name) * ".utf8) + argument + [10], from: member)
      }
    case .quit:
      reply("* bye, \(member.name)\n", to: member)
      leave(member, .quit)
    case .help: reply(RoomCommand.help, to: member)
    case nil:
      let shown = String(decoding: cutAtCharacter(Array(name.utf8), 40), as: UTF8.self)
      reply("* unknown command \(shown); /help lists the commands\n", to: member)
    }
  }

  func rename(_ member: Member, _ wanted: [UInt8]) {
    if wanted.isEmpty {
      reply("* usage: /nick NAME (you are \(member.name))\n", to: member)
      return
    }
    let name: String
    switch validateName(wanted) {
    case .success(let valid): name = valid
    case .failure(let problem):
      reply("* cannot take that name: \(problem.description)\n", to: member)
      return
    }
    if name == member.name {
      reply("* you are already \(name)\n", to: member)
      return
    }
    if let holder = members.named(name), holder !== member {
      reply("* the name \(name) is taken\n", to: member)
      return
    }
    let old = member.name
    member.name = name
    notice("\(old) is now \(name)")
    Trace.event(.room, "nick", "client=\(member.id) \(old) \(name)")
    broadcast("* \(old) is now known as \(name)\n")
  }

  /// "* 3 here: ana, bob (you), guest-3", at most `RoomCommand.whoBytes`
  /// long: a big room ends the list with "and N more".
  func who(_ member: Member) {
    let present = members.present
    var text = "* \(present.count) here: "
    for (index, other) in present.enumerated() {
      let entry = (index == 0 ? "" : ", ") + other.name + (other === member ? " (you)" : "")
      if text.utf8.count + entry.utf8.count > RoomCommand.whoBytes - 30 {
        text += ", and \(present.count - index) more"
        break
      }
      text += entry
    }
    reply(text + "\n", to: member)
  }
}
