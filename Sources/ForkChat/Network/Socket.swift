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

  /// Bounds every blocking receive on this socket (read, recv, splice
  /// from it) to `seconds`: a call that waited that long with nothing
  /// comes back with EAGAIN (SO_RCVTIMEO, socket(7)).
  ///
  /// The corresponding C function is `setsockopt` (SO_RCVTIMEO).
  func setReceiveTimeout(_ seconds: Double) throws(Errno) {
    var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
    try nothingOrErrno {
      setsockopt(rawValue, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
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

  /// Starts a connection to `address`: on a blocking socket, waits until it
  /// is made; on a non-blocking one, throws EINPROGRESS at once while the
  /// handshake goes on (`connect(to:deadline:)` below waits for it with
  /// poll). Not retried on EINTR: the attempt goes on in the kernel, and a
  /// second connect(2) would fail with EALREADY.
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

  /// Asks the kernel to notice a peer that has vanished without a word (its
  /// machine asleep, its cable or Wi-Fi gone) within about `seconds`, and
  /// then to end the connection with ETIMEDOUT, "Connection timed out":
  ///
  /// - idle: TCP keepalive (SO_KEEPALIVE) sends an empty probe after
  ///   `seconds`/2 of silence (TCP_KEEPIDLE), then one every `seconds`/10
  ///   (TCP_KEEPINTVL); a live peer's kernel answers each one, whatever its
  ///   program is doing (even stopped).
  /// - busy: TCP_USER_TIMEOUT ends the connection once data has gone
  ///   unacknowledged for `seconds`, instead of the ~15 minutes of
  ///   retransmissions net.ipv4.tcp_retries2 allows. With keepalive on, it
  ///   also decides when the unanswered probes are enough (tcp(7)):
  ///   `seconds` of silence, whatever TCP_KEEPCNT says.
  ///
  /// The wire stays plain TCP: probes are segments every TCP stack answers,
  /// so nc, socat and telnet peers are unaffected. 0 leaves the kernel's
  /// defaults (no keepalive; tcp_retries2).
  ///
  /// The corresponding C function is `setsockopt` (SOL_SOCKET SO_KEEPALIVE;
  /// IPPROTO_TCP TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT).
  public func detectDeadPeer(after seconds: Double) throws(Failure) {
    guard seconds > 0 else { return }
    let idle = CInt(min(max(seconds / 2, 1), 32767))  // tcp(7): at most 32767 s
    let interval = CInt(min(max(seconds / 10, 1), 32767))
    let count = CInt(min(max((seconds - Double(idle)) / Double(interval), 1), 127).rounded(.up))
    let userTimeout = CInt(min(seconds * 1000, Double(CInt.max)))  // ms
    let tcp = CInt(IPPROTO_TCP)
    for (level, name, option, value) in [
      (SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", 1), (tcp, TCP_KEEPIDLE, "TCP_KEEPIDLE", idle),
      (tcp, TCP_KEEPINTVL, "TCP_KEEPINTVL", interval), (tcp, TCP_KEEPCNT, "TCP_KEEPCNT", count),
      (tcp, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", userTimeout),
    ] {
      do {
        try setOption(level, name, value)
      } catch {
        throw Failure("setsockopt \(option) \(value)", error)
      }
    }
  }

  /// Whether the kernel has given up on the peer: the connection is closed
  /// (TCP_CLOSE) after retransmissions or keepalive probes went unanswered
  /// (TCP_INFO). A socket reports an error once, to whichever call comes
  /// first: when two processes (or threads) share the socket, one may take
  /// the ETIMEDOUT while the other then reads a mere end of file, or gets
  /// EPIPE from a write. This tells such an end from the peer's FIN (or a
  /// close of our own), which leaves the retransmission and probe counts at
  /// zero.
  ///
  /// The corresponding C function is `getsockopt` (IPPROTO_TCP TCP_INFO).
  public var kernelGaveUpOnPeer: Bool {
    var info = tcp_info()
    var size = socklen_t(MemoryLayout<tcp_info>.size)
    guard getsockopt(rawValue, CInt(IPPROTO_TCP), TCP_INFO, &info, &size) == 0 else { return false }
    return info.tcpi_state == UInt8(TCP_CLOSE) && (info.tcpi_retransmits > 0 || info.tcpi_probes > 0)
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
/// `timeout` bounds each try (nil: the kernel's own limit, about 2 min).
/// With `retryFor`, a connection that is refused or times out is tried
/// again every 100 ms until that many seconds have passed since the start
/// (the client may start before the server, or its machine); a try still
/// going then is given up.
public func connect(host: String, port: UInt16, family: AddressFamily, timeout: Double?, retryFor: Double?)
  throws(Failure) -> (FileDescriptor, SocketAddress)
{
  let addresses = try resolve(host: host, port: port, family: family)
  let deadline = retryFor.map { Clock.now + $0 }
  var announcedRetry = false
  while true {
    var failures: [Failure] = []
    for address in addresses {
      let tryDeadline = [timeout.map { Clock.now + $0 }, deadline].compactMap { $0 }.min()
      do {
        let socket = try connect(to: address, deadline: tryDeadline)
        Trace.event(.main, "connect", "fd=\(socket.rawValue) \(address)")
        return (socket, address)
      } catch {
        Trace.event(.main, "connect", "\(address) failed: \(error.errno?.description ?? error.description)")
        failures.append(error)
      }
    }
    let worthRetrying = failures.allSatisfy { $0.errno == .connectionRefused || $0.errno == .timedOut }
    if let deadline, worthRetrying, Clock.now < deadline {
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

/// One connect(2) attempt, given up at `deadline` (CLOCK_MONOTONIC seconds;
/// nil: none but the kernel's). The socket is non-blocking while it
/// connects: connect(2) returns EINPROGRESS at once, poll(2) waits until
/// the socket is writable (the handshake is over) or the deadline passes,
/// and SO_ERROR holds the outcome; then it is made blocking again. A
/// signal's EINTR is retried in poll (the connect goes on in the kernel
/// meanwhile). Throws "socket for ADDRESS: ...", "connect to ADDRESS:
/// Connection refused", "connect to ADDRESS: Connection timed out (no
/// answer in 10 s)".
func connect(to address: SocketAddress, deadline: Double?) throws(Failure) -> FileDescriptor {
  let socket = try orFailure("socket for \(address)") { () throws(Errno) in
    try FileDescriptor.tcpSocket(family: address.family)
  }
  let started = Clock.now
  var gaveUp = false
  do throws(Errno) {
    try socket.setNonBlocking(true)
    do throws(Errno) {
      try socket.connect(to: address)
    } catch .inProgress {
      var entry = [pollfd(fd: socket.rawValue, events: Int16(POLLOUT), revents: 0)]
      if try poll(&entry, timeout: Clock.pollTimeout(until: deadline)) == 0 {
        gaveUp = true
        throw Errno.timedOut
      }
      if let outcome = try socket.pendingError() { throw outcome }
    }
    try socket.setNonBlocking(false)
    return socket
  } catch {
    socket.closeIgnoringErrors()
    guard gaveUp else { throw Failure("connect to \(address)", error) }
    let waited = formatSeconds(((Clock.now - started) * 10).rounded() / 10)
    throw Failure("connect to \(address): \(error) (no answer in \(waited) s)", errno: error)
  }
}
