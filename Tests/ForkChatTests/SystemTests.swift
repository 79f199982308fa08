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

  @Test func writeAllLoopsOverShortWrites() throws {
    var ends: [CInt] = [-1, -1]
    #expect(pipe(&ends) == 0)
    let reader = FileDescriptor(rawValue: ends[0])
    let writer = FileDescriptor(rawValue: ends[1])
    defer { reader.closeIgnoringErrors() }
    // More than a pipe holds (64 KiB): write(2) returns short counts
    // while a reader drains the other end.
    // The test runner has threads, so the child calls nothing but
    // read(2), close(2) and _exit(2), all async-signal-safe; its buffer
    // is allocated before fork().
    let total = 1 << 20
    let bytes = [UInt8](repeating: 7, count: total)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
    defer { buffer.deallocate() }
    let pid = fork()
    if pid == 0 {
      Glibc.close(writer.rawValue)
      var received = 0
      while case let count = Glibc.read(reader.rawValue, buffer.baseAddress, 4096), count > 0 {
        received += count
      }
      _exit(received == total ? 0 : 1)
    }
    try writer.writeAll(bytes)
    writer.closeIgnoringErrors()
    #expect(try waitForChild(pid) == .exited(0))
  }
}
