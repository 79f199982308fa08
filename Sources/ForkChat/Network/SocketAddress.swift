import CForkChat
import Glibc

/// An IPv4 or IPv6 socket address (a `sockaddr_storage` and its length),
/// as bind(2), connect(2) and accept(2) take and return it.
public struct SocketAddress: Sendable, CustomStringConvertible {
  public var storage = sockaddr_storage()
  public var length = socklen_t(MemoryLayout<sockaddr_storage>.size)

  public init() {}

  public init(_ address: UnsafePointer<sockaddr>, length: socklen_t) {
    self.length = length
    withUnsafeMutableBytes(of: &storage) { target in
      target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(length)))
    }
  }

  /// The wildcard address of `family` ("0.0.0.0" or "::") on `port`.
  public static func any(family: CInt, port: UInt16) -> SocketAddress {
    var address = SocketAddress()
    address.withMutableSockaddr { pointer, length in
      if family == AF_INET6 {
        pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
          $0.pointee = sockaddr_in6()
          $0.pointee.sin6_family = sa_family_t(AF_INET6)
          $0.pointee.sin6_port = port.bigEndian
          $0.pointee.sin6_addr = in6addr_any
        }
        length = socklen_t(MemoryLayout<sockaddr_in6>.size)
      } else {
        pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
          $0.pointee = sockaddr_in()
          $0.pointee.sin_family = sa_family_t(AF_INET)
          $0.pointee.sin_port = port.bigEndian
          $0.pointee.sin_addr.s_addr = INADDR_ANY
        }
        length = socklen_t(MemoryLayout<sockaddr_in>.size)
      }
    }
    return address
  }

  public var family: CInt { CInt(storage.ss_family) }

  public func withSockaddr<R, E: Error>(
    _ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R
  ) throws(E) -> R {
    var copy = storage
    return try withUnsafeBytes(of: &copy) { (raw) throws(E) -> R in
      try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
    }
  }

  public mutating func withMutableSockaddr<R, E: Error>(
    _ body: (UnsafeMutablePointer<sockaddr>, inout socklen_t) throws(E) -> R
  ) throws(E) -> R {
    var length = self.length
    defer { self.length = length }
    return try withUnsafeMutableBytes(of: &storage) { (raw) throws(E) -> R in
      try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
    }
  }

  /// The numeric host ("127.0.0.1", "::1"). An IPv4 peer reaching an IPv6
  /// dual-stack socket appears as "::ffff:127.0.0.1"; it is shown as IPv4.
  public var host: String {
    var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    let status = withSockaddr { address, length in
      getnameinfo(address, length, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST)
    }
    guard status == 0 else { return "?" }
    let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let mapped = "::ffff:"
    if host.hasASCIIPrefix("::ffff:"), host.contains(".") { return String(host.dropFirst(mapped.count)) }
    return host
  }

  public var port: UInt16 {
    var copy = storage
    return withUnsafeBytes(of: &copy) { raw in
      family == AF_INET6
        ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
        : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
    }
  }

  /// "127.0.0.1 port 8080": the form netcat uses in its messages.
  public var description: String { "\(host) port \(port)" }
}

/// How a host name or address may be turned into socket addresses.
public enum AddressFamily: Sendable, Equatable {
  case any, inet4, inet6

  var value: CInt {
    switch self {
    case .any: AF_UNSPEC
    case .inet4: AF_INET
    case .inet6: AF_INET6
    }
  }
}

/// Resolves `host` (a name or numeric address, an IPv6 literal in brackets
/// too, "[::1]", as URLs, ssh and socat write it; nil for the wildcard) and
/// `port` into stream socket addresses, in the order getaddrinfo(3) gives.
/// Throws a `Failure` with gai_strerror's text, naming the host, and the
/// port unless it is 0 (any port: only the host matters, as for --allow).
public func resolve(
  host: String?, port: UInt16, family: AddressFamily, passive: Bool = false
) throws(Failure) -> [SocketAddress] {
  var hints = addrinfo()
  hints.ai_family = family.value
  hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
  hints.ai_protocol = CInt(IPPROTO_TCP)
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
  var list: UnsafeMutablePointer<addrinfo>?
  var name = host
  if let host, host.hasASCIIPrefix("["), host.hasSuffix("]"), host.contains(":") {  // System/TextPrefix.swift
    name = String(host.dropFirst().dropLast())
  }
  let status = getaddrinfo(name, "\(port)", &hints, &list)  // "\(port)": System/Decimal.swift
  guard status == 0 else {
    let text = status == EAI_SYSTEM ? Errno.current.description : String(cString: gai_strerror(status))
    throw Failure("getaddrinfo for \(host ?? "*")\(port == 0 ? "" : " port \(port)"): \(text)")
  }
  defer { freeaddrinfo(list) }
  var addresses: [SocketAddress] = []
  var entry = list
  while let info = entry {
    if let address = info.pointee.ai_addr {
      addresses.append(SocketAddress(address, length: info.pointee.ai_addrlen))
    }
    entry = info.pointee.ai_next
  }
  return addresses
}

/// Whether two addresses name the same host (ports ignored), treating an
/// IPv4-mapped IPv6 address as the IPv4 address it carries.
public func sameHost(_ a: SocketAddress, _ b: SocketAddress) -> Bool {
  a.host == b.host
}
