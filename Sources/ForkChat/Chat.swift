import Glibc

// The two commands: wait for a peer, or call one; then hand the connected
// socket to a Session (Session/Session.swift), where the chat is driven.

/// What the command line asks for, for every subcommand at once, the way
/// netcat keeps one set of flags: each command reads the settings that
/// concern it. Which options set what, and which subcommand takes which, is
/// the option table of the command line (Sources/ForkChatCommand/OptionTable.swift).
public struct Options: Equatable, Sendable {
  // Where: connect calls `host`; listen and room wait on `bindAddress`
  // (nil: every interface).
  public var host = ""
  public var port: UInt16 = 8080
  public var bindAddress: String? = nil
  public var family = AddressFamily.any
  // listen
  public var keep = false
  public var allow: String? = nil
  public var echo = false
  // connect
  public var retry: Double? = nil
  /// Seconds each connection try may take (0: the kernel's limit, about
  /// 130 s of SYN retransmissions).
  public var connectTimeout = Options.defaultConnectTimeout
  // The chat itself (listen, connect).
  public var session = SessionOptions()
  // The room.
  public var room = RoomOptions()
  // forkchat check (Check/Check.swift).
  public var check = CheckOptions()
  public var trace = false

  public init() {}

  /// 10 s: the kernel sends SYN at 0, 1, 3 and 7 s, so a lost SYN or two
  /// (a poor Wi-Fi) still connect; a host that has not answered by then is
  /// down, or a firewall drops the packets. nc and socat have no limit
  /// unless told (nc -w, socat connect-timeout): the kernel's ~130 s.
  public static let defaultConnectTimeout = 10.0
}

/// Exit statuses (documented in the README and the man page).
public enum ExitStatus {
  public static let success: CInt = 0
  /// A runtime failure: network, I/O, or the sending process died.
  public static let failure: CInt = 1
  /// A command-line error (EX_USAGE in sysexits.h).
  public static let usage: CInt = 64
}

extension SessionResult {
  var exitStatus: CInt { self == .finished ? ExitStatus.success : ExitStatus.failure }
}

/// Listens, accepts one peer at a time, and chats with it (or echoes, with
/// --echo). Returns the exit status. Without `keep`, the listening socket
/// is closed as soon as the peer is accepted, so no third party can even
/// connect.
public func listenAndChat(_ options: Options) -> CInt {
  let listener: Listener
  var allowed: [SocketAddress] = []
  do throws(Failure) {
    if let allow = options.allow { allowed = try resolve(host: allow, port: 0, family: .any) }
    listener = try Listener.open(port: options.port, bindAddress: options.bindAddress, family: options.family)
  } catch {
    notice(error.description)
    return ExitStatus.failure
  }
  notice("listening on \(listener.description)")
  if options.echo { return serveEcho(listener, options: options, allowed: allowed) }
  var session = options.session
  session.parentClosesInput = !options.keep
  while true {
    guard let (socket, peer) = acceptAllowed(listener, options: options, allowed: allowed) else {
      return ExitStatus.failure
    }
    let result = chat(
      socket: socket, peer: peer, options: session, accepted: true,
      closeInChild: options.keep ? [listener.socket] : [])
    if !options.keep { return result.exitStatus }
    notice("waiting for the next peer on \(listener.description)")
  }
}

/// Accepts the next peer that --allow lets in; any other is reset at once
/// (RST, so that it learns it was refused), with a notice. Without --keep,
/// the listening socket is closed before the peer is announced, so that
/// once "connection from" is printed a third party is refused. Returns nil
/// if accept(2) fails (reported).
func acceptAllowed(_ listener: Listener, options: Options, allowed: [SocketAddress])
  -> (FileDescriptor, SocketAddress)?
{
  while true {
    let socket: FileDescriptor
    let peer: SocketAddress
    do {
      (socket, peer) = try listener.socket.accept()
    } catch {
      notice("accept on \(listener.address): \(error)")
      listener.socket.closeIgnoringErrors()
      return nil
    }
    Trace.event(.main, "accept", "fd=\(socket.rawValue) \(peer)")
    if !allowed.isEmpty && !allowed.contains(where: { sameHost($0, peer) }) {
      notice("refused connection from \(peer) (not --allow \(options.allow!))")
      try? socket.resetOnClose()
      socket.closeIgnoringErrors()
      Trace.event(.main, "close", "fd=\(socket.rawValue) not allowed, RST")
      continue
    }
    if !options.keep { listener.socket.closeIgnoringErrors() }
    notice("connection from \(peer)")
    return (socket, peer)
  }
}

/// Connects to the host and chats. Returns the exit status.
public func connectAndChat(_ options: Options) -> CInt {
  let socket: FileDescriptor
  let peer: SocketAddress
  do throws(Failure) {
    (socket, peer) = try connect(
      host: options.host, port: options.port, family: options.family,
      timeout: options.connectTimeout > 0 ? options.connectTimeout : nil, retryFor: options.retry)
  } catch {
    notice(error.description)
    return ExitStatus.failure
  }
  notice("connected to \(peer)")
  return chat(socket: socket, peer: peer, options: options.session, accepted: false).exitStatus
}

/// Runs a session on a connected socket (Session/Session.swift). If the
/// session cannot take its memory, says so and closes the socket.
func chat(
  socket: FileDescriptor, peer: SocketAddress, options: SessionOptions, accepted: Bool,
  closeInChild: [FileDescriptor] = []
) -> SessionResult {
  do {
    return try Session(
      socket: socket, peer: peer, options: options, accepted: accepted, closeInChild: closeInChild
    ).run()
  } catch {
    notice(error.description)
    socket.closeIgnoringErrors()
    return .failed
  }
}
