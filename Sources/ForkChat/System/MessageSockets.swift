import CForkChat
import Glibc

// A socket pair that keeps message boundaries, and passing a descriptor
// through it (SCM_RIGHTS, unix(7)): the room's hub hands each client
// socket to the spawner this way.

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

  /// Receives one message into `buffer` and the descriptor that came with
  /// it (nil if none did): the message's length, or nil at end of file.
  /// Without the heap: the room's spawner receives this way, as every page
  /// it writes between two forks becomes a private page of a reader.
  ///
  /// The corresponding C function is `recvmsg`.
  func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> (
    count: Int, descriptor: FileDescriptor?
  )? {
    var received: CInt = -1
    let count = try valueOrErrno {
      forkchat_receive_descriptor(rawValue, &received, buffer.baseAddress, UInt(buffer.count))
    }
    if count == 0 && received == -1 { return nil }
    return (count, received == -1 ? nil : FileDescriptor(rawValue: received))
  }
}
