import Glibc

/// An error number from a failed system call, as `errno(3)` reports it.
///
/// Errors stay typed until the edge of the program, where `description`
/// gives the text `strerror(3)` would print.
public struct Errno: Error, Equatable, CustomStringConvertible, Sendable {
  public let rawValue: CInt

  public init(rawValue: CInt) { self.rawValue = rawValue }

  /// The calling thread's current `errno`.
  public static var current: Errno { Errno(rawValue: errno) }

  public static let interrupted = Errno(rawValue: EINTR)
  public static let wouldBlock = Errno(rawValue: EAGAIN)
  public static let brokenPipe = Errno(rawValue: EPIPE)
  public static let connectionReset = Errno(rawValue: ECONNRESET)
  public static let connectionRefused = Errno(rawValue: ECONNREFUSED)
  public static let notConnected = Errno(rawValue: ENOTCONN)
  public static let timedOut = Errno(rawValue: ETIMEDOUT)
  public static let inProgress = Errno(rawValue: EINPROGRESS)

  /// The text of `strerror(3)`, e.g. "Connection refused".
  public var description: String { String(cString: strerror(rawValue)) }
}

/// A failure that ends a command, with the one line that explains it:
/// the call, the host or peer, and the error text
/// ("connect to 127.0.0.1 port 8080: Connection refused").
public struct Failure: Error, CustomStringConvertible, Sendable {
  public let description: String
  public let errno: Errno?
  /// The kernel gave up on a peer that stopped answering (see
  /// `kernelGaveUpOnPeer`): the session reports that once, whichever of
  /// its processes or threads met it first.
  public let peerVanished: Bool

  public init(_ what: String, _ error: Errno, peerVanished: Bool = false) {
    description = "\(what): \(error)"
    errno = error
    self.peerVanished = peerVanished
  }

  public init(_ message: String, errno: Errno? = nil) {
    description = message
    self.errno = errno
    peerVanished = false
  }
}

/// Calls `body` until it does not fail with EINTR (if `retryOnInterrupt`),
/// and turns the C convention "-1 and errno" into a thrown `Errno`.
///
/// This is the one EINTR policy of forkchat: read, write, accept, poll and
/// waitpid retry; `close` never does (on Linux the descriptor is already
/// released when close reports EINTR, and a retry could close a descriptor
/// that another open just reused); neither does `connect`, whose attempt
/// goes on in the kernel after EINTR (Network/Socket.swift).
@inline(__always)
func valueOrErrno<I: FixedWidthInteger>(
  retryOnInterrupt: Bool = true, _ body: () -> I
) throws(Errno) -> I {
  while true {
    let result = body()
    if result != -1 { return result }
    let error = Errno.current
    if error == .interrupted && retryOnInterrupt { continue }
    throw error
  }
}

/// The same policy for the calls that return 0 on success.
@inline(__always)
func nothingOrErrno(retryOnInterrupt: Bool = true, _ body: () -> CInt) throws(Errno) {
  _ = try valueOrErrno(retryOnInterrupt: retryOnInterrupt, body)
}

/// Runs `body`, a call that throws an `Errno`, and names what failed:
/// `try orFailure("write to \(peer)") { try socket.writeAll(bytes) }`
/// throws "write to 127.0.0.1 port 8080: Broken pipe".
@inline(__always)
func orFailure<R>(_ what: @autoclosure () -> String, _ body: () throws(Errno) -> R) throws(Failure) -> R {
  do {
    return try body()
  } catch {
    throw Failure(what(), error)
  }
}

extension Array where Element == UInt8 {
  /// `withUnsafeBytes` that keeps the typed error of `body`: the standard
  /// library's version rethrows it as `any Error`.
  func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    try withUnsafeBytes { bytes in Result { () throws(E) in try body(bytes) } }.get()
  }

  /// `withUnsafeMutableBytes` that keeps the typed error of `body`.
  mutating func withMutableBytes<R, E: Error>(
    _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
  ) throws(E) -> R {
    try withUnsafeMutableBytes { bytes in Result { () throws(E) in try body(bytes) } }.get()
  }
}

extension ArraySlice where Element == UInt8 {
  /// `withUnsafeBytes` that keeps the typed error of `body`.
  func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    try withUnsafeBytes { bytes in Result { () throws(E) in try body(bytes) } }.get()
  }
}
