import CForkChat
import Glibc

// The few system calls the room needs beyond the two-party chat's: closing
// what a forked child does not own, the limit on open descriptors, a
// socket pair that keeps message boundaries, passing a descriptor, and a
// close that resets the connection.

extension FileDescriptor {
  /// Makes the last close(2) of this socket reset the connection (RST) at
  /// once instead of sending what is queued then FIN (SO_LINGER with a
  /// zero time, socket(7)): for a client dropped for not reading, whose
  /// queued bytes would otherwise sit in the kernel until TCP gives up.
  ///
  /// The corresponding C function is `setsockopt` (SO_LINGER).
  func setResetOnClose() throws(Errno) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    try nothingOrErrno {
      setsockopt(rawValue, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }
  }
}

/// Closes every open descriptor from `first` to `last`.
///
/// The corresponding C function is `close_range` (Linux 5.9; ENOSYS before).
func closeRange(_ first: CInt, through last: CInt) throws(Errno) {
  try nothingOrErrno(retryOnInterrupt: false) { forkchat_close_range(UInt32(first), UInt32(last)) }
}

/// In a freshly forked child: closes every descriptor but `keep` (and
/// standard error), whatever the parent had open: other clients' sockets,
/// the listening socket, the pipes; standard input and output are left
/// open on /dev/null. close-on-exec does not help here, as the child does
/// not exec. Allocates nothing: every page a reader writes becomes its own
/// (fork shares the others), and a reader is forked per client.
///
/// Uses `close_range` around the kept descriptors; on an older kernel,
/// `close` on each number up to the descriptor limit.
func closeDescriptors(except keep: [CInt]) {
  func isKept(_ descriptor: CInt) -> Bool { descriptor == STDERR_FILENO || keep.contains(descriptor) }
  var first: CInt = 0
  while first < CInt.max {
    // The next kept descriptor from `first` on: close what lies before it.
    var next = first <= STDERR_FILENO ? STDERR_FILENO : CInt.max
    for descriptor in keep where descriptor >= first { next = min(next, descriptor) }
    if next > first {
      do {
        try closeRange(first, through: next == CInt.max ? CInt.max : next - 1)
      } catch {
        let end = min(next, CInt(min(openFileLimit().soft, 1 << 20)))
        for number in first..<max(first, end) { try? FileDescriptor(rawValue: number).close() }
      }
    }
    first = next == CInt.max ? next : next + 1
  }
  // Standard input and output stay open, on /dev/null: a free 0 or 1 would
  // be the next descriptor this process opens (lowest first), and a stray
  // write to "stdout" would then land in, say, its signal pipe.
  for standard in [FileDescriptor.standardInput, .standardOutput] where !isKept(standard.rawValue) {
    guard let null = try? FileDescriptor.open("/dev/null", O_RDWR) else { continue }
    if null != standard {
      try? null.duplicate(as: standard)
      null.closeIgnoringErrors()
    }
  }
}

/// The limits on `resource` (RLIMIT_NOFILE: open descriptors).
///
/// The corresponding C function is `getrlimit`.
func resourceLimit(_ resource: __rlimit_resource) throws(Errno) -> (soft: UInt, hard: UInt) {
  var limit = rlimit()
  try nothingOrErrno { getrlimit(__rlimit_resource_t(resource.rawValue), &limit) }
  return (UInt(limit.rlim_cur), UInt(limit.rlim_max))
}

/// Sets the limits on `resource`.
///
/// The corresponding C function is `setrlimit`.
func setResourceLimit(_ resource: __rlimit_resource, soft: UInt, hard: UInt) throws(Errno) {
  var limit = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
  try nothingOrErrno { setrlimit(__rlimit_resource_t(resource.rawValue), &limit) }
}

/// This process's limits on open descriptors.
func openFileLimit() -> (soft: UInt, hard: UInt) {
  (try? resourceLimit(RLIMIT_NOFILE)) ?? (1024, 1024)
}

/// Raises the soft limit on open descriptors towards the hard limit, so
/// that the hub can hold `wanted` of them. Returns the limit in force.
func raiseOpenFileLimit(to wanted: UInt) -> UInt {
  let (soft, hard) = openFileLimit()
  guard soft < wanted else { return soft }
  let raised = min(wanted, hard)
  guard (try? setResourceLimit(RLIMIT_NOFILE, soft: raised, hard: hard)) != nil else { return soft }
  return raised
}

/// A pair of connected local sockets that keep message boundaries
/// (AF_UNIX, SOCK_SEQPACKET, close-on-exec): what one end sends in one
/// call, the other receives in one call. The hub hands client sockets to
/// the spawner through it.
///
/// The corresponding C function is `socketpair`.
func makeMessageSocketPair() throws(Errno) -> (FileDescriptor, FileDescriptor) {
  var ends: [CInt] = [-1, -1]
  let type = CInt(SOCK_SEQPACKET.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
  try nothingOrErrno { socketpair(AF_UNIX, type, 0, &ends) }
  return (FileDescriptor(rawValue: ends[0]), FileDescriptor(rawValue: ends[1]))
}

extension FileDescriptor {
  /// Sends `text` in one message with `descriptor` attached (SCM_RIGHTS,
  /// unix(7)), without waiting: the receiving process gets a descriptor of
  /// its own for the same open file, as if it had called dup(2).
  ///
  /// The corresponding C function is `sendmsg`.
  func send(_ text: String, with descriptor: FileDescriptor) throws(Errno) {
    var bytes = Array(text.utf8)
    let flags = CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL)
    _ = try valueOrErrno {
      forkchat_send_descriptor(rawValue, descriptor.rawValue, &bytes, UInt(bytes.count), flags)
    }
  }

  /// Receives one message and the descriptor that came with it (nil if
  /// none did). Returns nil at end of file.
  ///
  /// The corresponding C function is `recvmsg`.
  func receiveWithDescriptor() throws(Errno) -> (text: String, descriptor: FileDescriptor?)? {
    var bytes = [UInt8](repeating: 0, count: 64)
    var received: CInt = -1
    let count = try valueOrErrno {
      forkchat_receive_descriptor(rawValue, &received, &bytes, UInt(bytes.count))
    }
    if count == 0 && received == -1 { return nil }
    let text = String(decoding: bytes[..<count], as: UTF8.self)
    return (text, received == -1 ? nil : FileDescriptor(rawValue: received))
  }
}
