import Glibc
import Testing

@testable import ForkChat

// EINTR, EAGAIN and short counts injected into FileDescriptor and poll()
// through the syscall seam (System/Syscalls.swift, ENABLE_MOCKING in the
// debug build), as swift-system's MockTestCase does: no signal, no full
// pipe, no draining thread, no timing. Each test scripts a descriptor
// number of its own, which nothing opens, so that tests running at the
// same time keep their real calls.

/// Scripts `results` on a fresh descriptor number, runs `body` with it,
/// and returns the calls the descriptor saw.
private func scripted(
  _ fd: CInt, _ results: [MockResult], _ body: (FileDescriptor) throws -> Void
) rethrows -> [MockCall] {
  SyscallMock.shared.script(fd, results)
  do {
    try body(FileDescriptor(rawValue: fd))
  } catch {
    _ = SyscallMock.shared.finish(fd)
    throw error
  }
  return SyscallMock.shared.finish(fd)
}

private let bytes = Array("0123456789".utf8)

@Suite("System calls, scripted")
struct SyscallMockTests {
  @Test func writeAllGoesOnAfterShortWritesFromWhereTheKernelStopped() throws {
    let calls = try scripted(9001, [.returns(3), .returns(1), .returns(6)]) { (fd: FileDescriptor) throws in
      try fd.writeAll(bytes)
    }
    #expect(calls.map(\.count) == [10, 7, 6])
    #expect(calls.map(\.bytes) == [bytes, Array(bytes[3...]), Array(bytes[4...])])
  }

  @Test func writeAllRetriesEINTRWithTheSameBytes() throws {
    let calls = try scripted(9002, [.returns(4), .interrupted, .interrupted, .returns(6)]) {
      (fd: FileDescriptor) throws in
      try fd.writeAll(bytes)
    }
    #expect(calls.map(\.name) == ["write", "write", "write", "write"])
    #expect(calls.dropFirst().allSatisfy { $0.bytes == Array(bytes[4...]) })
  }

  @Test func writeAllWithOnInterruptRunsItOnEachEINTR() throws {
    var interruptions = 0
    let calls = try scripted(9003, [.interrupted, .returns(2), .interrupted, .returns(8)]) {
      (fd: FileDescriptor) throws in
      try bytes.withBytes { buffer throws(Errno) in try fd.writeAll(buffer) { interruptions += 1 } }
    }
    #expect(interruptions == 2)
    #expect(calls.map(\.count) == [10, 10, 8, 8])
  }

  @Test func writeAllThatMeetsEAGAINWaitsWithPollThenGoesOn() throws {
    let calls = try scripted(9004, [.returns(5), .wouldBlock, .returns(1), .returns(5)]) {
      (fd: FileDescriptor) throws in
      try fd.writeAll(bytes)
    }
    #expect(calls.map(\.name) == ["write", "write", "poll", "write"])
    #expect(calls[2].count == -1, "poll without a time limit")
    #expect(calls[3].bytes == Array(bytes[5...]))
  }

  @Test func pollInterruptedWhileWaitingForRoomRunsOnInterruptThenWaitsAgain() throws {
    var interruptions = 0
    let calls = try scripted(9005, [.wouldBlock, .interrupted, .returns(1), .returns(10)]) {
      (fd: FileDescriptor) throws in
      try bytes.withBytes { buffer throws(Errno) in try fd.writeAll(buffer) { interruptions += 1 } }
    }
    #expect(calls.map(\.name) == ["write", "poll", "poll", "write"])
    #expect(interruptions == 1)
  }

  @Test func aWriteErrorOtherThanEINTRAndEAGAINIsThrown() throws {
    let calls = try scripted(9006, [.returns(2), .fails(.brokenPipe)]) { (fd: FileDescriptor) throws in
      #expect(throws: Errno.brokenPipe) { try fd.writeAll(bytes) }
    }
    #expect(calls.count == 2)
  }

  @Test func writeReturnsAShortCountAsItIs() throws {
    let calls = try scripted(9007, [.returns(3)]) { (fd: FileDescriptor) throws in
      let written = try bytes.withBytes { buffer throws(Errno) in try fd.write(buffer) }
      #expect(written == 3)
    }
    #expect(calls.count == 1)
  }

  @Test func writeWithoutRetryThrowsEINTR() throws {
    _ = try scripted(9008, [.interrupted]) { (fd: FileDescriptor) throws in
      #expect(throws: Errno.interrupted) {
        try bytes.withBytes { buffer throws(Errno) in try fd.write(buffer, retryOnInterrupt: false) }
      }
    }
  }

  @Test func readRetriesEINTRAndReturnsWhatCame() throws {
    var buffer = [UInt8](repeating: 0, count: 16)
    let calls = try scripted(9009, [.interrupted, .reads(Array("hi".utf8))]) { (fd: FileDescriptor) throws in
      let count = try buffer.withMutableBytes { raw throws(Errno) in try fd.read(into: raw) }
      #expect(count == 2 && buffer[..<2] == [104, 105])
    }
    #expect(calls.map(\.name) == ["read", "read"])
  }

  @Test func readWaitingPollsOnEAGAIN() throws {
    var buffer = [UInt8](repeating: 0, count: 16)
    let calls = try scripted(9010, [.wouldBlock, .returns(1), .reads([7])]) { (fd: FileDescriptor) throws in
      let count = try buffer.withMutableBytes { raw throws(Errno) in try fd.readWaiting(into: raw) }
      #expect(count == 1 && buffer[0] == 7)
    }
    #expect(calls.map(\.name) == ["read", "poll", "read"])
  }

  @Test func closeIsNeverRetried() throws {
    let calls = try scripted(9011, [.interrupted]) { (fd: FileDescriptor) throws in
      #expect(throws: Errno.interrupted) { try fd.close() }
    }
    #expect(calls.map(\.name) == ["close"], "on Linux the descriptor is gone after EINTR")
  }

  @Test func pollRetriesEINTRUnlessAskedNotTo() throws {
    var entries = [pollfd(fd: 9012, events: Int16(POLLIN), revents: 0)]
    let calls = try scripted(9012, [.interrupted, .returns(1), .interrupted]) { (_: FileDescriptor) throws in
      #expect(try poll(&entries, timeout: 100) == 1)
      #expect(entries[0].revents == Int16(POLLIN))
      #expect(throws: Errno.interrupted) { try poll(&entries, timeout: 100, retryOnInterrupt: false) }
    }
    #expect(calls.map(\.count) == [100, 100, 100])
  }

  @Test func aPollSetWaitThatTimesOutSaysSo() throws {
    enum Slot: Int, CaseIterable { case only }
    var set = PollSet<Slot>()
    set.watch(.only, FileDescriptor(rawValue: 9013))
    _ = try scripted(9013, [.returns(0)]) { (_: FileDescriptor) throws in
      #expect(try set.wait(timeout: 5) == false)
      #expect(!set.isReady(.only))
    }
  }
}
