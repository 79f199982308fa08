import Foundation
import Glibc
import Testing

@testable import ForkChat

@Suite("System wrappers")
struct SystemTests {
  @Test func errnoText() {
    #expect(Errno.connectionRefused.description == "Connection refused")
    #expect(Errno.brokenPipe.description == "Broken pipe")
  }

  @Test func failureNamesTheCallThePeerAndTheError() {
    let address = SocketAddress.any(family: AF_INET, port: 8080)
    let failure = Failure("connect to \(address)", .connectionRefused)
    #expect(failure.description == "connect to 0.0.0.0 port 8080: Connection refused")
  }

  @Test func addressesAreShownAsNetcatDoes() throws {
    #expect(SocketAddress.any(family: AF_INET6, port: 1).description == ":: port 1")
    let local = try resolve(host: "127.0.0.1", port: 9, family: .inet4)
    #expect(local.map(\.description) == ["127.0.0.1 port 9"])
    let mapped = try resolve(host: "::ffff:127.0.0.1", port: 9, family: .inet6)
    #expect(mapped.first?.host == "127.0.0.1")
  }

  @Test func unknownHostIsAFailureWithGaiText() {
    #expect(throws: Failure.self) { try resolve(host: "nosuch.invalid", port: 8080, family: .any) }
    do {
      _ = try resolve(host: "nosuch.invalid", port: 8080, family: .any)
    } catch {
      #expect(error.description.hasPrefix("getaddrinfo for nosuch.invalid port 8080: "))
    }
  }

  @Test func waitStatusDecoding() {
    #expect(WaitStatus(rawValue: 0) == .exited(0))
    #expect(WaitStatus(rawValue: 3 << 8) == .exited(3))
    #expect(WaitStatus(rawValue: SIGKILL) == .signaled(SIGKILL))
    #expect(WaitStatus(rawValue: SIGTERM | 0x80) == .signaled(SIGTERM))  // core dumped flag
    #expect(WaitStatus.signaled(SIGKILL).description == "killed by signal 9 (Killed)")
  }

  /// An integer socket option, read back (getsockopt).
  func option(_ socket: FileDescriptor, _ level: CInt, _ name: CInt) -> CInt {
    var value: CInt = -1
    var size = socklen_t(MemoryLayout<CInt>.size)
    _ = getsockopt(socket.rawValue, level, name, &value, &size)
    return value
  }

  @Test(arguments: [
    (60.0, [1, 30, 6, 5, 60000]),  // the default: probes after 30 s, then every 6 s
    (3.0, [1, 1, 1, 2, 3000]),
    (0.5, [1, 1, 1, 1, 500]),
    (100_000.0, [1, 32767, 10000, 7, 100_000_000]),  // TCP_KEEPIDLE is at most 32767 s
  ])
  func deadPeerSetsKeepaliveAndUserTimeout(seconds: Double, expected: [CInt]) throws {
    let socket = try FileDescriptor.tcpSocket(family: AF_INET)
    defer { socket.closeIgnoringErrors() }
    try socket.detectDeadPeer(after: seconds)
    let tcp = CInt(IPPROTO_TCP)
    let set = [
      option(socket, SOL_SOCKET, SO_KEEPALIVE), option(socket, tcp, TCP_KEEPIDLE),
      option(socket, tcp, TCP_KEEPINTVL), option(socket, tcp, TCP_KEEPCNT),
      option(socket, tcp, TCP_USER_TIMEOUT),
    ]
    #expect(set == expected)
  }

  @Test func deadPeerZeroLeavesTheKernelDefaults() throws {
    let socket = try FileDescriptor.tcpSocket(family: AF_INET)
    defer { socket.closeIgnoringErrors() }
    try socket.detectDeadPeer(after: 0)
    #expect(option(socket, SOL_SOCKET, SO_KEEPALIVE) == 0)
    #expect(option(socket, CInt(IPPROTO_TCP), TCP_USER_TIMEOUT) == 0)
    #expect(!socket.kernelGaveUpOnPeer)  // not connected: TCP_CLOSE, but nothing went unanswered
  }
}
