import Glibc

#if ENABLE_MOCKING
  import Synchronization
#endif

// The system calls that FileDescriptor and poll() make, each wrapped once
// in an internal `system_*` function, as swift-system does
// (Internals/Syscalls.swift). In the release build each is the C call and
// nothing else. In the debug build (`swift test`; Package.swift defines
// ENABLE_MOCKING there), a test can script the results of the calls on a
// descriptor number of its choice (`SyscallMock`): EINTR, EAGAIN, a short
// count, in order, without a signal, a full pipe or a timing trick. Other
// descriptors still get the real call, so tests that run at the same time
// are not disturbed.

func system_read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
  #if ENABLE_MOCKING
    if let result = SyscallMock.shared.take("read", fd, count) { return result.perform(into: buffer, count) }
  #endif
  return Glibc.read(fd, buffer, count)
}

func system_write(_ fd: CInt, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
  #if ENABLE_MOCKING
    if let result = SyscallMock.shared.take("write", fd, count, bytes) {
      return result.perform(into: nil, count)
    }
  #endif
  return Glibc.write(fd, bytes, count)
}

func system_close(_ fd: CInt) -> CInt {
  #if ENABLE_MOCKING
    if let result = SyscallMock.shared.take("close", fd, 0) { return CInt(result.perform(into: nil, 0)) }
  #endif
  return Glibc.close(fd)
}

/// poll(2); mocked when its first descriptor is a scripted one.
func system_poll(_ descriptors: UnsafeMutablePointer<pollfd>?, _ count: nfds_t, _ timeout: CInt) -> CInt {
  #if ENABLE_MOCKING
    if count > 0, let descriptors,
      let result = SyscallMock.shared.take("poll", descriptors[0].fd, Int(timeout))
    {
      let ready = result.perform(into: nil, 0)
      if ready > 0 { descriptors[0].revents = descriptors[0].events }
      return CInt(ready)
    }
  #endif
  return Glibc.poll(descriptors, count, timeout)
}

#if ENABLE_MOCKING
  /// What a scripted call does instead of the system call.
  enum MockResult: Equatable, Sendable {
    /// Returns this count (a short one, say), as if it had done the work.
    case returns(Int)
    /// read(2): fills the buffer with these bytes and returns their count.
    case reads([UInt8])
    /// Fails with this errno (returns -1).
    case fails(Errno)

    /// A signal handler interrupted the call.
    static let interrupted = MockResult.fails(.interrupted)
    /// The descriptor is non-blocking and not ready.
    static let wouldBlock = MockResult.fails(.wouldBlock)

    func perform(into buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
      switch self {
      case .returns(let value): return value
      case .reads(let bytes):
        let taken = min(bytes.count, count)
        bytes.withUnsafeBytes { buffer?.copyMemory(from: $0.baseAddress!, byteCount: taken) }
        return taken
      case .fails(let error):
        errno = error.rawValue
        return -1
      }
    }
  }

  /// One call that reached a scripted descriptor: its name, the count it
  /// asked for (poll: its timeout), and for write the bytes it was given.
  struct MockCall: Equatable, Sendable {
    let name: String
    let count: Int
    var bytes: [UInt8] = []
  }

  /// The scripts, by descriptor number: the results the next calls on it
  /// get, in order, and the calls it saw. A call for which the script has
  /// no result left fails with EBADF, which ends the code under test.
  final class SyscallMock: Sendable {
    static let shared = SyscallMock()

    private struct Script {
      var results: [MockResult]
      var calls: [MockCall] = []
    }
    private let scripts = Mutex<[CInt: Script]>([:])

    /// Scripts `results` for the calls on `fd` (a number no test opens).
    func script(_ fd: CInt, _ results: [MockResult]) {
      scripts.withLock { $0[fd] = Script(results: results) }
    }

    /// Ends the script of `fd`; returns the calls it saw, in order.
    func finish(_ fd: CInt) -> [MockCall] {
      scripts.withLock { $0.removeValue(forKey: fd)?.calls ?? [] }
    }

    func take(_ name: String, _ fd: CInt, _ count: Int, _ bytes: UnsafeRawPointer? = nil) -> MockResult? {
      scripts.withLock { scripts -> MockResult? in
        guard scripts[fd] != nil else { return nil }
        var call = MockCall(name: name, count: count)
        if let bytes { call.bytes = Array(UnsafeRawBufferPointer(start: bytes, count: count)) }
        scripts[fd]!.calls.append(call)
        return scripts[fd]!.results.isEmpty
          ? .fails(Errno(rawValue: EBADF)) : scripts[fd]!.results.removeFirst()
      }
    }
  }
#endif
