// The clients, as the hub sees them: one list, in the order they joined
// (the order of their numbers); who is present, who has a name, how many
// there are, are views of it.

/// One client.
final class Member {
  let id: Int
  let socket: FileDescriptor
  let peer: SocketAddress
  var name: String
  /// The next byte of the log for this client.
  var cursor: LogPosition
  var state = State.joining
  /// Its socket took less than it was given: wait for POLLOUT.
  var socketFull = false
  /// Since when lines have waited for it without its socket taking a byte.
  var waitingSince: Double? = nil
  /// When it was accepted (Clock.now).
  let since = Clock.now
  /// It has sent a line (a command included): it is no silent connection.
  var spoke = false
  /// The reader said bye, or the spawner reported its end.
  var readerDone = false
  /// A send failed (the client is gone): nothing more is sent to it.
  var outputBroken = false

  enum State {
    /// Accepted, its socket handed to the spawner; waiting for its reader's
    /// first record ("start") to be welcomed. Holds a place; gets nothing.
    case joining
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
  var isJoining: Bool {
    if case .joining = state { true } else { false }
  }
  /// Present or joining: it counts against --max-clients and --max-per-host.
  var holdsPlace: Bool { isPresent || isJoining }
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
  /// Its machine stopped answering: keepalive probes or data went
  /// unacknowledged for --dead-peer seconds (timedOut), or a router said
  /// it cannot be reached (ICMP: unreachable).
  case vanished(Vanished)
  /// Gave its place to a newcomer: the room was full, and it had sent
  /// nothing for `seconds` since it came.
  case silent(seconds: Int)
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
    case .vanished(.timedOut): " (timed out: its machine stopped answering)"
    case .vanished(.unreachable): " (unreachable: the network says its machine cannot be reached)"
    case .silent(let seconds): " (dropped: said nothing in \(seconds) s, and the room was full)"
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

enum Vanished { case timedOut, unreachable }

/// The clients the hub knows, present or leaving, in the order they joined,
/// which is the order of their numbers: one list, and views of it.
struct Members {
  private var list: [Member] = []

  /// The client numbered `id` (binary search: the numbers only grow).
  subscript(id: Int) -> Member? {
    var low = 0
    var high = list.count
    while low < high {
      let middle = (low + high) / 2
      if list[middle].id < id { low = middle + 1 } else { high = middle }
    }
    return low < list.count && list[low].id == id ? list[low] : nil
  }

  /// Every client whose socket the hub still holds, in the order they
  /// joined: the order the hub sends a line in.
  var all: [Member] { list }

  /// The clients in the room.
  var present: [Member] { list.filter(\.isPresent) }

  var presentCount: Int { list.reduce(0) { $0 + ($1.isPresent ? 1 : 0) } }

  /// The places taken: the clients present and the ones joining.
  var placesTaken: Int { list.reduce(0) { $0 + ($1.holdsPlace ? 1 : 0) } }

  /// The places taken by clients from `peer`'s address.
  func placesTaken(from peer: SocketAddress) -> Int {
    let host = peer.host
    return list.reduce(0) { $0 + ($1.holdsPlace && $1.peer.host == host ? 1 : 0) }
  }

  /// The present client that has sent nothing for the longest time, at
  /// least `seconds` since it came.
  func longestSilent(atLeast seconds: Double, now: Double) -> Member? {
    list.first { $0.isPresent && !$0.spoke && now - $0.since >= seconds }  // in the order they came
  }

  /// The present client called `name`, whatever the case ("Ana" is "ana").
  func named(_ name: String) -> Member? {
    let key = nameKey(name)
    return list.first { $0.isPresent && nameKey($0.name) == key }
  }

  /// A newcomer: its number is higher than any before.
  mutating func add(_ member: Member) {
    precondition(list.last.map { $0.id < member.id } ?? true)
    list.append(member)
  }

  /// Forgets the clients whose socket is closed.
  mutating func removeClosed() { list.removeAll { !$0.socketOpen } }
}
