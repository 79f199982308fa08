import CForkChat
import Glibc

/// An open file descriptor: a small integer naming a kernel object
/// (terminal, pipe, file or socket) in this process's descriptor table.
///
/// Thin wrappers over read(2), write(2), close(2) and shutdown(2); errors
/// are thrown as `Errno`. A call interrupted by a signal handler (EINTR) is
/// retried (`valueOrErrno`), except: `write`, `writeAll` and `splice` can
/// be asked not to (`retryOnInterrupt: false`, or an `onInterrupt` to run
/// first), for a caller blocked on a full terminal or pipe that must look
/// at the signals; and `close` never retries (on Linux the descriptor is
/// gone after EINTR, and a retry could close another one).
public struct FileDescriptor: Hashable, Sendable {
  public let rawValue: CInt

  public init(rawValue: CInt) { self.rawValue = rawValue }

  public static let standardInput = FileDescriptor(rawValue: STDIN_FILENO)
  public static let standardOutput = FileDescriptor(rawValue: STDOUT_FILENO)
  public static let standardError = FileDescriptor(rawValue: STDERR_FILENO)

  /// Reads at most `buffer.count` bytes; returns 0 at end of file.
  ///
  /// The corresponding C function is `read`.
  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
    try valueOrErrno { system_read(rawValue, buffer.baseAddress, buffer.count) }
  }

  /// Writes some of `bytes`, returning how many the kernel took (a pipe or
  /// socket may take fewer than asked: a short write).
  ///
  /// With `retryOnInterrupt: false` an EINTR is thrown, so that a caller
  /// blocked on a full terminal or pipe can look at pending signals.
  ///
  /// The corresponding C function is `write`.
  public func write(
    _ bytes: UnsafeRawBufferPointer, retryOnInterrupt: Bool = true
  ) throws(Errno) -> Int {
    try valueOrErrno(retryOnInterrupt: retryOnInterrupt) {
      system_write(rawValue, bytes.baseAddress, bytes.count)
    }
  }

  /// Writes every byte of `bytes`, looping over short writes; EINTR is
  /// retried.
  public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
    try writeAll(bytes, retryOnInterrupt: true) {}
  }

  /// Writes every byte of `bytes`, looping over short writes. Each time a
  /// signal handler interrupts the write (EINTR), `onInterrupt` runs before
  /// the write is tried again; it may throw, or never return.
  public func writeAll(
    _ bytes: UnsafeRawBufferPointer, onInterrupt: () throws(Errno) -> Void
  ) throws(Errno) {
    try writeAll(bytes, retryOnInterrupt: false, onInterrupt: onInterrupt)
  }

  /// A descriptor made non-blocking behind our back (O_NONBLOCK is shared
  /// by every process holding the same open file, such as a pipe whose other
  /// users set it) fails with EAGAIN instead of waiting: then poll(2) waits
  /// for room, and the write goes on.
  private func writeAll(
    _ bytes: UnsafeRawBufferPointer, retryOnInterrupt: Bool, onInterrupt: () throws(Errno) -> Void
  ) throws(Errno) {
    var done = 0
    while done < bytes.count {
      let written = system_write(rawValue, bytes.baseAddress! + done, bytes.count - done)
      if written >= 0 {
        done += written
        continue
      }
      let error = Errno.current
      if error == .wouldBlock {
        try waitUntilReady(for: Int16(POLLOUT), onInterrupt: retryOnInterrupt ? {} : onInterrupt)
        continue
      }
      guard error == .interrupted else { throw error }
      if !retryOnInterrupt { try onInterrupt() }
    }
  }

  /// Reads like `read`, but when the descriptor is non-blocking and has
  /// nothing yet (EAGAIN), waits for it with poll(2) instead of failing.
  public func readWaiting(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
    while true {
      do {
        return try read(into: buffer)
      } catch .wouldBlock {
        try waitUntilReady(for: Int16(POLLIN))
      }
    }
  }

  /// Waits until the descriptor is ready for `events` (POLLIN, POLLOUT):
  /// what EAGAIN asks of the caller of a non-blocking descriptor. An error
  /// or a hang-up counts as ready: the next call reports it. Each time a
  /// signal interrupts the wait, `onInterrupt` runs before it goes on.
  ///
  /// The corresponding C function is `poll`.
  public func waitUntilReady(
    for events: Int16, onInterrupt: () throws(Errno) -> Void = {}
  ) throws(Errno) {
    var entry = [pollfd(fd: rawValue, events: events, revents: 0)]
    while true {
      do {
        _ = try poll(&entry, timeout: -1, retryOnInterrupt: false)
        return
      } catch .interrupted {
        try onInterrupt()
      }
    }
  }

  public func writeAll(_ bytes: [UInt8]) throws(Errno) {
    try bytes.withBytes { buffer throws(Errno) in try writeAll(buffer) }
  }

  /// Closes the descriptor, reporting a failure (EBADF for a number that is
  /// not open: the room's readers close whatever numbers their parent may
  /// have had). Never retried: see `valueOrErrno`.
  ///
  /// The corresponding C function is `close`.
  public func close() throws(Errno) {
    try nothingOrErrno(retryOnInterrupt: false) { system_close(rawValue) }
  }

  /// Closes the descriptor when the caller has nothing to do about a failure
  /// (EBADF here would be a double close: a bug, caught by the assertion).
  public func closeIgnoringErrors() {
    let result = system_close(rawValue)
    assert(result == 0 || errno != EBADF, "double close of descriptor \(rawValue)")
  }

  /// Closes the descriptor; a standard one (0, 1, 2) is made to name
  /// /dev/null instead (dup2(2)), so that its number stays taken: open(2),
  /// socket(2) and pipe(2) return the lowest free number, and a socket
  /// that became standard output by chance would get what is printed.
  /// With no descriptor left to open /dev/null, it is closed all the same.
  public func closeOrReplaceStandard() {
    guard rawValue <= STDERR_FILENO, let null = try? FileDescriptor.open("/dev/null", O_RDWR) else {
      return closeIgnoringErrors()
    }
    if (try? null.duplicate(as: self)) == nil { closeIgnoringErrors() }
    null.closeIgnoringErrors()
  }

  /// Ends one or both directions of a socket for every process holding it.
  /// `SHUT_WR` sends FIN once queued data is out; unlike `close`, it acts
  /// even while another process still has the socket open.
  ///
  /// The corresponding C function is `shutdown`.
  public func shutdown(_ how: CInt) throws(Errno) {
    try nothingOrErrno { Glibc.shutdown(rawValue, how) }
  }

  /// Whether the descriptor is a pipe or FIFO (fstat(2), S_IFIFO).
  public var isPipe: Bool { fileType == S_IFIFO }

  /// Whether the descriptor is a regular file (fstat(2), S_IFREG).
  public var isRegularFile: Bool { fileType == S_IFREG }

  /// The S_IFMT bits of fstat(2)'s st_mode (0 if fstat fails).
  private var fileType: mode_t {
    var status = stat()
    return fstat(rawValue, &status) == 0 ? status.st_mode & S_IFMT : 0
  }

  /// Moves up to `count` bytes from this descriptor to `target` inside the
  /// kernel, without copying them through this process; one of the two
  /// must be a pipe. Returns the bytes moved, 0 at end of input. With
  /// `retryOnInterrupt: false` an EINTR is thrown, as for `write`.
  ///
  /// The corresponding C function is `splice`.
  public func splice(
    to target: FileDescriptor, count: Int, retryOnInterrupt: Bool = true
  ) throws(Errno) -> Int {
    try valueOrErrno(retryOnInterrupt: retryOnInterrupt) { system_splice(rawValue, target.rawValue, count) }
  }

  /// Sends up to `count` bytes of this descriptor, a regular file, from
  /// its current offset (which moves on, as read(2) would move it) to the
  /// socket `target`, inside the kernel: the file's pages go from the page
  /// cache to the socket without a copy through this process. Returns the
  /// bytes sent, 0 at end of file. EINVAL: the file cannot be sent this way
  /// (its file system has no splice_read); read(2) and write(2) can.
  ///
  /// The corresponding C function is `sendfile`.
  public func sendFile(to target: FileDescriptor, count: Int) throws(Errno) -> Int {
    try valueOrErrno { system_sendfile(target.rawValue, rawValue, count) }
  }

  /// Whether the descriptor refers to a terminal (isatty(3)).
  public var isTerminal: Bool { isatty(rawValue) == 1 }

  /// Makes `target` refer to the same open file as this descriptor.
  ///
  /// The corresponding C function is `dup2`.
  public func duplicate(as target: FileDescriptor) throws(Errno) {
    _ = try valueOrErrno { dup2(rawValue, target.rawValue) }
  }

  /// Opens `path` (read-only by default; close-on-exec unless told).
  ///
  /// The corresponding C function is `open`.
  public static func open(
    _ path: String, _ flags: CInt = O_RDONLY, closeOnExec: Bool = true
  ) throws(Errno) -> FileDescriptor {
    FileDescriptor(rawValue: try valueOrErrno { Glibc.open(path, flags | (closeOnExec ? O_CLOEXEC : 0)) })
  }

  /// Whether this number names an open descriptor of this process.
  ///
  /// The corresponding C function is `fcntl` (F_GETFD, which fails with
  /// EBADF on a closed descriptor).
  public var isOpen: Bool { fcntl(rawValue, F_GETFD) != -1 || errno != EBADF }
}

extension FileDescriptor {
  /// Sets (or clears) O_NONBLOCK on this descriptor's open file
  /// description, for descriptors that only this process uses: the flag is
  /// shared by every process that holds the same open file.
  ///
  /// The corresponding C function is `fcntl` (F_GETFL, F_SETFL).
  public func setNonBlocking(_ on: Bool = true) throws(Errno) {
    let flags = try valueOrErrno { fcntl(rawValue, F_GETFL) }
    try nothingOrErrno { fcntl(rawValue, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) }
  }
}

/// A pipe, both ends close-on-exec, with `flags` (O_NONBLOCK) added.
///
/// The corresponding C function is `pipe2`.
public func makePipe(flags: CInt = 0) throws(Errno) -> (read: FileDescriptor, write: FileDescriptor) {
  var ends: [CInt] = [-1, -1]
  try nothingOrErrno { forkchat_pipe2(&ends, O_CLOEXEC | flags) }
  return (FileDescriptor(rawValue: ends[0]), FileDescriptor(rawValue: ends[1]))
}

extension Errno {
  /// EINVAL, as splice(2) and sendfile(2) give it for a descriptor they
  /// cannot move bytes to or from (a terminal, a file opened O_APPEND, a
  /// file system without splice): read(2) and write(2) do the job instead.
  static let invalidArgument = Errno(rawValue: EINVAL)
}

// splice(2) and sendfile(2) behind the same seam as read(2) and write(2)
// (Syscalls.swift): in the debug build a test scripts their results on a
// descriptor number of its choice, the input's or the output's.

func system_splice(_ input: CInt, _ output: CInt, _ count: Int) -> Int {
  #if ENABLE_MOCKING
    if let result = scripted("splice", input, output, count) { return result }
  #endif
  return forkchat_splice(input, output, UInt(count))
}

func system_sendfile(_ output: CInt, _ input: CInt, _ count: Int) -> Int {
  #if ENABLE_MOCKING
    if let result = scripted("sendfile", input, output, count) { return result }
  #endif
  return Glibc.sendfile(output, input, nil, count)
}

#if ENABLE_MOCKING
  /// The result a test scripted for `call` on either descriptor, if any.
  private func scripted(_ call: String, _ input: CInt, _ output: CInt, _ count: Int) -> Int? {
    let result =
      SyscallMock.shared.take(call, input, count)
      ?? SyscallMock.shared.take(call, output, count)
    return result?.perform(into: nil, count)
  }
#endif
