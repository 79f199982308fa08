import CForkChat
import Glibc

// TCP sockets: the calls a server makes (socket, setsockopt, bind, listen,
// accept) and the ones a client makes (socket, connect). Every socket is
// created close-on-exec, so no program forkchat might run inherits it.

extension FileDescriptor {
  /// A new TCP socket of `family`.
  ///
  /// The corresponding C function is `socket`.
  static func tcpSocket(family: CInt) throws(Errno) -> FileDescriptor {
    let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
    let fd = try valueOrErrno { socket(family, type, CInt(IPPROTO_TCP)) }
    Trace.event(.main, "socket", "fd=\(fd) \(family == AF_INET6 ? "AF_INET6" : "AF_INET") SOCK_STREAM")
    return FileDescriptor(rawValue: fd)
  }

  /// Sets an integer socket option.
  ///
  /// The corresponding C function is `setsockopt`.
  func setOption(_ level: CInt, _ name: CInt, _ value: CInt) throws(Errno) {
    var value = value
    try nothingOrErrno {
      setsockopt(rawValue, level, name, &value, socklen_t(MemoryLayout<CInt>.size))
    }
  }

  /// Receives at most `buffer.count` bytes, as read(2) does, with `flags`
  /// (MSG_PEEK: look at the bytes without taking them). Returns 0 at end
  /// of file.
  ///
  /// The corresponding C function is `recv`.
  public func receive(into buffer: UnsafeMutableRawBufferPointer, flags: CInt) throws(Errno) -> Int {
    try valueOrErrno { recv(rawValue, buffer.baseAddress, buffer.count, flags) }
  }

  /// Makes close(2) reset the connection (RST) instead of ending it with a
  /// FIN: SO_LINGER on, with a linger time of 0 (socket(7)). The peer's next
  /// read or write fails with ECONNRESET: it learns it was turned away, not
  /// that the other side had nothing to say.
  ///
  /// The corresponding C function is `setsockopt` (SO_LINGER).
  func resetOnClose() throws(Errno) {
    var value = linger(l_onoff: 1, l_linger: 0)
    try nothingOrErrno {
      setsockopt(rawValue, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size))
    }
  }

  /// Waits for the next connection on a listening socket and returns the
  /// connected socket (close-on-exec) with the peer's address.
  ///
  /// The corresponding C function is `accept4`.
  public func accept() throws(Errno) -> (FileDescriptor, SocketAddress) {
    var peer = SocketAddress()
    let fd = try peer.withMutableSockaddr { (address, length) throws(Errno) in
      try valueOrErrno { forkchat_accept4(rawValue, address, &length, CInt(SOCK_CLOEXEC.rawValue)) }
    }
    return (FileDescriptor(rawValue: fd), peer)
  }

  /// Gives the socket its local address.
  ///
  /// The corresponding C function is `bind`.
  func bind(to address: SocketAddress) throws(Errno) {
    try address.withSockaddr { (pointer, length) throws(Errno) in
      try nothingOrErrno { Glibc.bind(rawValue, pointer, length) }
    }
  }

  /// Makes the socket a listening one, with room for `backlog` connections
  /// that are established but not yet accepted.
  ///
  /// The corresponding C function is `listen`.
  func listen(backlog: CInt) throws(Errno) {
    try nothingOrErrno { Glibc.listen(rawValue, backlog) }
  }

  /// Starts a connection to `address` and waits until it is made. Not
  /// retried on EINTR: the attempt goes on in the kernel, and a second
  /// connect(2) would fail with EALREADY (see `connect(to:)` below).
  ///
  /// The corresponding C function is `connect`.
  func connect(to address: SocketAddress) throws(Errno) {
    try address.withSockaddr { (pointer, length) throws(Errno) in
      try nothingOrErrno(retryOnInterrupt: false) { Glibc.connect(rawValue, pointer, length) }
    }
  }

  /// The error waiting on the socket, if any, and clears it: the outcome of
  /// a connect that went on in the background, or why a peer went away.
  ///
  /// The corresponding C function is `getsockopt` (SO_ERROR).
  func pendingError() throws(Errno) -> Errno? {
    var error: CInt = 0
    var size = socklen_t(MemoryLayout<CInt>.size)
    try nothingOrErrno { getsockopt(rawValue, SOL_SOCKET, SO_ERROR, &error, &size) }
    return error == 0 ? nil : Errno(rawValue: error)
  }

  /// The address the kernel gave this socket (after bind, or port 0).
  ///
  /// The corresponding C function is `getsockname`.
  public func localAddress() throws(Errno) -> SocketAddress {
    var local = SocketAddress()
    try local.withMutableSockaddr { (address, length) throws(Errno) in
      try nothingOrErrno { getsockname(rawValue, address, &length) }
    }
    return local
  }
}

/// A bound, listening TCP socket and the address it listens on.
public struct Listener {
  public let socket: FileDescriptor
  public let address: SocketAddress
  /// True when an IPv6 socket also takes IPv4 peers (IPV6_V6ONLY off).
  public let dualStack: Bool

  /// "listening on :: port 8080 (IPv6 and IPv4)"
  public var description: String {
    "\(address.host) port \(address.port)" + (dualStack ? " (IPv6 and IPv4)" : "")
  }

  /// Binds `port` and listens. With no `bindAddress`, one IPv6 socket with
  /// IPV6_V6ONLY off takes peers of both families ("::"), falling back to
  /// "0.0.0.0" where the kernel has no IPv6. SO_REUSEADDR lets a server be
  /// restarted at once while old connections sit in TIME_WAIT.
  /// With `bindAddress`, each of its addresses is tried in turn. Throws a
  /// `Failure` naming the last address tried: "bind to :: port 8080:
  /// Address already in use".
  public static func open(port: UInt16, bindAddress: String?, family: AddressFamily)
    throws(Failure) -> Listener
  {
    var candidates: [(SocketAddress, dualStack: Bool)]
    switch (bindAddress, family) {
    case (nil, .any):
      candidates = [(.any(family: AF_INET6, port: port), true), (.any(family: AF_INET, port: port), false)]
    case (nil, .inet4): candidates = [(.any(family: AF_INET, port: port), false)]
    case (nil, .inet6): candidates = [(.any(family: AF_INET6, port: port), false)]
    case (let host?, _):
      candidates = try resolve(host: host, port: port, family: family, passive: true).map { ($0, false) }
    }
    var lastFailure = Failure("no address to listen on")
    for (address, dualStack) in candidates {
      do {
        return try listen(on: address, dualStack: dualStack)
      } catch let failure {
        lastFailure = failure
        // The "::" wildcard gives way to "0.0.0.0" only where the kernel
        // has no IPv6; any other failure (a port in use) is the answer.
        if dualStack && failure.errno != Errno(rawValue: EAFNOSUPPORT) { break }
      }
    }
    throw lastFailure
  }

  static func listen(on address: SocketAddress, dualStack: Bool) throws(Failure) -> Listener {
    let socket: FileDescriptor
    do {
      socket = try .tcpSocket(family: address.family)
    } catch {
      throw Failure("socket for \(address)", error)
    }
    do {
      try socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
      if address.family == AF_INET6 {
        try socket.setOption(CInt(IPPROTO_IPV6), IPV6_V6ONLY, dualStack ? 0 : 1)
      }
      try socket.bind(to: address)
    } catch {
      socket.closeIgnoringErrors()
      throw Failure("bind to \(address)", error)
    }
    Trace.event(.main, "bind", "\(address)")
    do {
      try socket.listen(backlog: SOMAXCONN)
      Trace.event(.main, "listen", "backlog=\(SOMAXCONN)")
      return Listener(socket: socket, address: try socket.localAddress(), dualStack: dualStack)
    } catch {
      socket.closeIgnoringErrors()
      throw Failure("listen on \(address)", error)
    }
  }
}

/// Connects to `host` on `port`, trying each address getaddrinfo gives in
/// turn (so "localhost" works whether ::1 or 127.0.0.1 answers). Each
/// failed address is reported on stderr when another one is tried after it.
/// With `retryFor`, a refused connection is tried again every 100 ms until
/// that many seconds have passed (the client may start before the server).
public func connect(host: String, port: UInt16, family: AddressFamily, retryFor: Double?)
  throws(Failure) -> (FileDescriptor, SocketAddress)
{
  let addresses = try resolve(host: host, port: port, family: family)
  let deadline = retryFor.map { Clock.now + $0 }
  var announcedRetry = false
  while true {
    var failures: [Failure] = []
    for address in addresses {
      do {
        let socket = try connect(to: address)
        Trace.event(.main, "connect", "fd=\(socket.rawValue) \(address)")
        return (socket, address)
      } catch {
        Trace.event(.main, "connect", "\(address) failed: \(error)")
        failures.append(Failure("connect to \(address)", error))
      }
    }
    let refused = failures.allSatisfy { $0.errno == .connectionRefused }
    if let deadline, refused, Clock.now < deadline {
      if !announcedRetry {
        notice("\(failures.last!); retrying for \(formatSeconds(retryFor!)) s")
        announcedRetry = true
      }
      Clock.sleep(seconds: min(0.1, max(0, deadline - Clock.now)))
      continue
    }
    for failure in failures.dropLast() { notice(failure.description) }
    throw failures.last ?? Failure("getaddrinfo for \(host) port \(port): no address")
  }
}

/// One connect(2) attempt. A connect interrupted by a signal goes on in
/// the kernel, so EINTR is not retried with connect: we wait for the
/// socket to become writable and read the outcome from SO_ERROR.
func connect(to address: SocketAddress) throws(Errno) -> FileDescriptor {
  let socket = try FileDescriptor.tcpSocket(family: address.family)
  do throws(Errno) {
    try socket.connect(to: address)
  } catch {
    do throws(Errno) {
      guard error == .interrupted else { throw error }
      var entry = [pollfd(fd: socket.rawValue, events: Int16(POLLOUT), revents: 0)]
      _ = try poll(&entry, timeout: -1)
      if let outcome = try socket.pendingError() { throw outcome }
    } catch {
      socket.closeIgnoringErrors()
      throw error
    }
  }
  return socket
}

/// Seconds as the user wrote them: "2", "0.5".
func formatSeconds(_ seconds: Double) -> String {
  seconds == seconds.rounded() && seconds < 1e15 ? String(Int(seconds)) : String(seconds)
}

/// The monotonic clock (CLOCK_MONOTONIC), in seconds: never jumps when the
/// wall clock is set.
public enum Clock {
  public static var now: Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
  }

  /// Sleeps, going back to sleep for the rest of the time after a signal.
  public static func sleep(seconds: Double) {
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
  }
}
