import Glibc

// The two commands: wait for a peer, or call one; then hand the connected
// socket to a Session (Session/Session.swift), where the chat is driven.

/// `forkchat listen`: what to listen on and whom to accept.
public struct ListenOptions: Equatable, Sendable {
  public var port: UInt16 = 8080
  public var bindAddress: String? = nil
  public var keep = false
  public var allow: String? = nil
  public var echo = false
  public var family: AddressFamily = .any
  public var trace = false
  public var session = SessionOptions()
  public init() {}
}

/// `forkchat connect`: whom to call.
public struct ConnectOptions: Equatable, Sendable {
  public var host = ""
  public var port: UInt16 = 8080
  public var retry: Double? = nil
  /// Seconds each connection try may take (0: the kernel's limit, about
  /// 130 s of SYN retransmissions).
  public var connectTimeout = ConnectOptions.defaultConnectTimeout
  public var family: AddressFamily = .any
  public var trace = false
  public var session = SessionOptions()
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
public func listenAndChat(_ options: ListenOptions) -> CInt {
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
    if !options.keep { listener.socket.closeIgnoringErrors() }
    let result = Session(
      socket: socket, peer: peer, options: session, accepted: true,
      closeInChild: options.keep ? [listener.socket] : []
    ).run()
    if !options.keep { return result.exitStatus }
    notice("waiting for the next peer on \(listener.description)")
  }
}

/// Accepts the next peer that --allow lets in; any other is closed at once,
/// with a notice. Returns nil if accept(2) fails (reported).
func acceptAllowed(_ listener: Listener, options: ListenOptions, allowed: [SocketAddress])
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
    Trace.event("main", "accept", "fd=\(socket.rawValue) \(peer)")
    if !allowed.isEmpty && !allowed.contains(where: { sameHost($0, peer) }) {
      notice("refused connection from \(peer) (not --allow \(options.allow!))")
      socket.closeIgnoringErrors()
      Trace.event("main", "close", "fd=\(socket.rawValue) not allowed")
      continue
    }
    notice("connection from \(peer)")
    return (socket, peer)
  }
}

/// Connects to the host and chats. Returns the exit status.
public func connectAndChat(_ options: ConnectOptions) -> CInt {
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
  return Session(socket: socket, peer: peer, options: options.session, accepted: false).run().exitStatus
}
