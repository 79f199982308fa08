import Glibc

// Sending on a socket with flags, and from several buffers at once: what
// the room's hub needs beyond write(2).

extension FileDescriptor {
  /// Sends what the socket's buffer takes of `bytes`, with `flags`
  /// (MSG_DONTWAIT: without waiting; MSG_NOSIGNAL: EPIPE, never SIGPIPE).
  /// Returns the bytes sent, maybe fewer than given; with MSG_DONTWAIT,
  /// throws `.wouldBlock` if the buffer is full.
  ///
  /// The corresponding C function is `send`.
  func send(_ bytes: UnsafeRawBufferPointer, flags: CInt) throws(Errno) -> Int {
    try valueOrErrno { Glibc.send(rawValue, bytes.baseAddress, bytes.count, flags) }
  }

  /// Sends the first `count` buffers of `pieces`, in order, as one piece
  /// of the byte stream (a gathering write, as writev(2) does, with
  /// `flags` as for `send`). Returns the bytes sent: the socket may take
  /// fewer than all, stopping anywhere, even inside a buffer.
  ///
  /// The corresponding C function is `sendmsg`.
  func sendMessage(_ pieces: UnsafeMutableBufferPointer<iovec>, count: Int, flags: CInt) throws(Errno) -> Int
  {
    var message = msghdr()
    message.msg_iov = pieces.baseAddress
    message.msg_iovlen = count
    return try valueOrErrno { Glibc.sendmsg(rawValue, &message, flags) }
  }
}
