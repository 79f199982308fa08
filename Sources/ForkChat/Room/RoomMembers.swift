// The clients, as the hub sees them: one index, by client number; who is
// present, who has a name, how many there are, are views of it.

/// One client.
final class Member {
  let id: Int
  let socket: FileDescriptor
  let peer: SocketAddress
  var name: String
  /// The next byte of the log for this client.
  var cursor: LogPosition
  var state = State.present
  /// Its socket took less than it was given: wait for POLLOUT.
  var socketFull = false
  /// Since when lines have waited for it without its socket taking a byte.
  var waitingSince: Double? = nil
  /// The reader said bye, or the spawner reported its end.
  var readerDone = false
  /// A send failed (the client is gone): nothing more is sent to it.
  var outputBroken = false

  enum State {
    /// In the room: gets every line.
    case present
    /// Has left; it still gets the log's lines up to `until` (its goodbye,
    /// the last messages) until the deadline.
    case leaving(until: LogPosition, deadline: Double)
    /// The hub's descriptor is closed: forgotten at the end of the loop.
    case closed
  }

  init(id: Int, socket: FileDescriptor, peer: SocketAddress, cursor: LogPosition) {
    self.id = id
    self.socket = socket
    self.peer = peer
    self.name = "guest-\(id)"
    self.cursor = cursor
  }

  var isPresent: Bool {
    if case .present = state { true } else { false }
  }
  var socketOpen: Bool {
    if case .closed = state { false } else { true }
  }
  /// Where its share of the log ends: nowhere while it is present.
  var logLimit: LogPosition? {
    if case .leaving(let until, _) = state { until } else { nil }
  }
}

/// Why a client left, for the notice everyone gets.
enum Leaving {
  case closed, reset, error(String), quit, died(String)
  /// Dropped: its socket took nothing for `seconds` while lines waited.
  case stalled(seconds: Int)
  /// Dropped: the log had to let go of lines it had not received yet.
  case behind(logMiB: Int)

  var suffix: String {
    switch self {
    case .closed, .quit: ""
    case .reset: " (connection reset)"
    case .error(let text): " (\(text))"
    case .died(let how): " (its reader process \(how))"
    case .stalled(let seconds): " (dropped: took nothing for \(seconds) s)"
    case .behind(let mib): " (dropped: a whole log, \(mib) MiB, behind)"
    }
  }

  /// A clean ending: what the log still holds for the client is worth
  /// sending.
  var graceful: Bool {
    switch self {
    case .closed, .quit: true
    default: false
    }
  }
}

/// The clients the hub knows, present or leaving, by number.
struct Members {
  private var byId: [Int: Member] = [:]

  subscript(id: Int) -> Member? { byId[id] }

  /// Every client whose socket the hub still holds, in no order.
  var all: Dictionary<Int, Member>.Values { byId.values }

  /// The clients in the room, in the order they joined.
  var present: [Member] { byId.values.filter(\.isPresent).sorted { $0.id < $1.id } }

  var presentCount: Int { byId.values.reduce(0) { $0 + ($1.isPresent ? 1 : 0) } }

  /// The present client called `name`, whatever the case ("Ana" is "ana").
  func named(_ name: String) -> Member? {
    let key = nameKey(name)
    return byId.values.first { $0.isPresent && nameKey($0.name) == key }
  }

  mutating func add(_ member: Member) { byId[member.id] = member }

  /// Forgets the clients whose socket is closed.
  mutating func removeClosed() {
    for member in byId.values where !member.socketOpen { byId[member.id] = nil }
  }
}
