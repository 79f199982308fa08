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

  /// A signal that interrupts a write(2) blocked on a full pipe, once part
  /// of the data is in, makes it return a short count (pipe(7), signal(7):
  /// a handler installed without SA_RESTART). writeAll must go on from
  /// there. The premise is checked first with a single write(2).
  @Test func writeAllLoopsOverShortWrites() throws {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in }  // does nothing: only interrupts
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0  // no SA_RESTART
    #expect(sigaction(SIGUSR1, &action, nil) == 0)
    let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) }

    let single = try interruptedTransfer(bytes) { (writer, bytes) throws(Errno) in
      try bytes.withBytes { buffer throws(Errno) in try writer.write(buffer) }
    }
    #expect(single.written > 0 && single.written < bytes.count, "a single write(2) must be short here")
    #expect(single.received.count == single.written)

    let all = try interruptedTransfer(bytes) { (writer, bytes) throws(Errno) in
      try writer.writeAll(bytes)
      return bytes.count
    }
    // (Bools, not arrays: on failure the test library would diff 1 MiB.)
    let allArrived = all.received.count == bytes.count
    let inOrder = all.received == bytes
    #expect(allArrived && inOrder, "received \(all.received.count) of \(bytes.count) bytes")
  }

  /// Writes `bytes` into a pipe with `write` while another thread drains
  /// it slowly and, once 128 KiB have come through, interrupts the writing
  /// thread with SIGUSR1. Returns what `write` said it wrote and what the
  /// reader received.
  func interruptedTransfer(
    _ bytes: [UInt8], _ write: (FileDescriptor, [UInt8]) throws(Errno) -> Int
  ) throws -> (written: Int, received: [UInt8]) {
    // The test runner's threads block SIGUSR1: let it reach this one.
    var usr1 = sigset_t()
    var oldMask = sigset_t()
    sigemptyset(&usr1)
    sigaddset(&usr1, SIGUSR1)
    pthread_sigmask(SIG_UNBLOCK, &usr1, &oldMask)
    defer { pthread_sigmask(SIG_SETMASK, &oldMask, nil) }
    let (reader, writer) = try makePipe()
    let drained = DrainedPipe(reader: reader, writingThread: pthread_self())
    let thread = Thread { drained.run() }
    thread.start()
    let written = try write(writer, bytes)
    writer.closeIgnoringErrors()
    drained.done.wait()
    reader.closeIgnoringErrors()
    return (written, drained.received)
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

/// The reading end of a pipe, drained 4 KiB at a time with a pause after
/// each read, on its own thread; it interrupts the writing thread once.
///
/// @unchecked Sendable: `received` is written by the draining thread only,
/// and read by the test only after `done` is signalled.
final class DrainedPipe: @unchecked Sendable {
  let reader: FileDescriptor
  let writingThread: pthread_t
  let done = DispatchSemaphore(value: 0)
  var received: [UInt8] = []

  init(reader: FileDescriptor, writingThread: pthread_t) {
    self.reader = reader
    self.writingThread = writingThread
  }

  func run() {
    var chunk = [UInt8](repeating: 0, count: 4096)
    var interrupted = false
    while true {
      let count = chunk.withUnsafeMutableBytes { (try? reader.read(into: $0)) ?? 0 }
      if count == 0 { break }
      received += chunk[..<count]
      if !interrupted && received.count >= 128 * 1024 {
        interrupted = true
        pthread_kill(writingThread, SIGUSR1)
      }
      usleep(200)
    }
    done.signal()
  }
}
