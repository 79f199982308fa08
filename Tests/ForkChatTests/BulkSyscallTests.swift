import Glibc
import Testing

@testable import ForkChat

// splice(2) and sendfile(2) through the syscall seam (FileDescriptor.swift,
// ENABLE_MOCKING in the debug build): the EINTR policy and the EINVAL the
// copy loops fall back on, scripted on descriptor numbers nothing opens.

@Suite("splice and sendfile, scripted")
struct BulkSyscallTests {
  @Test func sendFileRetriesEINTRAndReturnsWhatTheKernelSent() throws {
    SyscallMock.shared.script(9801, [.interrupted, .returns(4096)])
    let sent = try FileDescriptor(rawValue: 9801).sendFile(to: FileDescriptor(rawValue: 9802), count: 1 << 20)
    let calls = SyscallMock.shared.finish(9801)
    #expect(sent == 4096)
    #expect(calls.map(\.name) == ["sendfile", "sendfile"])
    #expect(calls.map(\.count) == [1 << 20, 1 << 20])
  }

  @Test func sendFileThatTheKernelRefusesThrowsInvalidArgument() {
    SyscallMock.shared.script(9803, [.fails(.invalidArgument)])
    #expect(throws: Errno.invalidArgument) {
      _ = try FileDescriptor(rawValue: 9803).sendFile(to: FileDescriptor(rawValue: 9804), count: 10)
    }
    #expect(SyscallMock.shared.finish(9803).count == 1)
  }

  @Test func spliceIsScriptedOnItsOutputToo() throws {
    SyscallMock.shared.script(9806, [.returns(61440)])
    let moved = try FileDescriptor(rawValue: 9805).splice(to: FileDescriptor(rawValue: 9806), count: 1 << 20)
    #expect(moved == 61440)
    #expect(SyscallMock.shared.finish(9806).map(\.name) == ["splice"])
  }

  @Test func spliceAskedNotToRetryThrowsEINTR() {
    SyscallMock.shared.script(9807, [.interrupted])
    #expect(throws: Errno.interrupted) {
      _ = try FileDescriptor(rawValue: 9807).splice(
        to: FileDescriptor(rawValue: 9808), count: 10, retryOnInterrupt: false)
    }
    #expect(SyscallMock.shared.finish(9807).count == 1)
  }

  @Test func aRegularFileIsNeitherAPipeNorATerminal() throws {
    let file = try FileDescriptor.open("/proc/self/exe")
    defer { file.closeIgnoringErrors() }
    #expect(file.isRegularFile && !file.isPipe && !file.isTerminal)
    let pipe = try makePipe()
    defer {
      pipe.read.closeIgnoringErrors()
      pipe.write.closeIgnoringErrors()
    }
    #expect(pipe.read.isPipe && !pipe.read.isRegularFile)
  }
}
