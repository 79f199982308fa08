import CForkChat
import Glibc

// The few system calls the room needs beyond the two-party chat's.

extension FileDescriptor {
  /// Sends what the socket's buffer takes now, without waiting: returns the
  /// bytes sent (maybe fewer than given), throws `.wouldBlock` if the
  /// buffer is full.
  ///
  /// MSG_DONTWAIT makes this one call non-blocking. Setting O_NONBLOCK with
  /// fcntl instead would change the open file description, which the hub
  /// shares with the client's reader process since fork(): the reader's
  /// read(2) would stop waiting too. MSG_NOSIGNAL: a closed peer gives
  /// EPIPE, never SIGPIPE (which main ignores anyway).
  ///
  /// The corresponding C function is `send`.
  func sendNow(_ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
    try valueOrErrno {
      Glibc.send(rawValue, bytes.baseAddress, bytes.count, CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL))
    }
  }

  /// Makes the last close(2) of this socket reset the connection (RST) at
  /// once instead of sending what is queued then FIN (SO_LINGER with a
  /// zero time, socket(7)): for a client dropped for not reading, whose
  /// queued bytes would otherwise sit in the kernel until TCP gives up.
  func setResetOnClose() throws(Errno) {
    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
    try nothingOrErrno {
      setsockopt(rawValue, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }
  }
}

/// In a freshly forked child: closes every descriptor but `keep` (and
/// standard error), whatever the parent had open: other clients' sockets,
/// the listening socket, the pipes; standard input and output are left
/// open on /dev/null. close-on-exec does not help here, as the child does
/// not exec.
///
/// The corresponding C function is `close_range` (Linux 5.9); on an older
/// kernel, `close` on each number up to the descriptor limit.
func closeDescriptors(except keep: [CInt]) {
  let kept = Set(keep + [STDERR_FILENO]).sorted()
  var first: CInt = 0
  for descriptor in kept + [CInt.max] {
    if descriptor > first {
      let last = descriptor == CInt.max ? UInt32.max : UInt32(descriptor - 1)
      if forkchat_close_range(UInt32(first), last) != 0 {
        let end = min(descriptor, CInt(min(openFileLimit().soft, 1 << 20)))
        var number = first
        while number < end {
          _ = Glibc.close(number)
          number += 1
        }
      }
    }
    first = descriptor == CInt.max ? descriptor : descriptor + 1
  }
  // Standard input and output stay open, on /dev/null: a free 0 or 1 would
  // be the next descriptor this process opens (lowest first), and a stray
  // write to "stdout" would then land in, say, its signal pipe.
  for standard in [STDIN_FILENO, STDOUT_FILENO] where !kept.contains(standard) {
    let null = Glibc.open("/dev/null", O_RDWR)
    if null >= 0 && null != standard {
      _ = dup2(null, standard)
      _ = Glibc.close(null)
    }
  }
}

/// This process's limits on open descriptors (RLIMIT_NOFILE).
func openFileLimit() -> (soft: UInt, hard: UInt) {
  var limit = rlimit()
  guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (1024, 1024) }
  return (UInt(limit.rlim_cur), UInt(limit.rlim_max))
}

/// Raises the soft limit on open descriptors towards the hard limit, so
/// that the hub can hold `wanted` of them. Returns the limit in force.
///
/// The corresponding C functions are `getrlimit` and `setrlimit`.
func raiseOpenFileLimit(to wanted: UInt) -> UInt {
  let (soft, hard) = openFileLimit()
  guard soft < wanted else { return soft }
  var limit = rlimit(rlim_cur: rlim_t(min(wanted, hard)), rlim_max: rlim_t(hard))
  guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return soft }
  return UInt(limit.rlim_cur)
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
