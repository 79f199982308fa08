import Glibc

// poll(2) with named slots. netcat.c names the entries of its pollfd array
// (POLL_STDIN, POLL_NETOUT, ...) and turns an entry off by setting its fd
// to -1, which poll(2) skips; PollSet does the same, with the cases of an
// enum as names, so that a loop reads as the table of what to watch.

/// Waits until one of `descriptors` is ready or `timeout` ms have passed
/// (-1: no limit); returns how many are ready (0: the time ran out). A
/// signal's EINTR is retried (the self-pipe, among `descriptors`, says
/// which signal came), unless `retryOnInterrupt` is false: then it is
/// thrown, for a caller that must look at the signals itself.
///
/// The corresponding C function is `poll`.
public func poll(
  _ descriptors: inout [pollfd], timeout: CInt, retryOnInterrupt: Bool = true
) throws(Errno) -> CInt {
  let count = nfds_t(descriptors.count)
  return try descriptors.withUnsafeMutableBufferPointer { entries throws(Errno) in
    try valueOrErrno(retryOnInterrupt: retryOnInterrupt) { system_poll(entries.baseAddress, count, timeout) }
  }
}

/// A pollfd array whose entries are named by the cases of `Slot`.
struct PollSet<Slot: CaseIterable & RawRepresentable> where Slot.RawValue == Int {
  private var entries = [pollfd](repeating: pollfd(fd: -1, events: 0, revents: 0), count: Slot.allCases.count)

  /// Watches `descriptor` for `events` (POLLIN, POLLOUT) in `slot`; nil
  /// turns the slot off.
  mutating func watch(_ slot: Slot, _ descriptor: FileDescriptor?, for events: CInt = POLLIN) {
    entries[slot.rawValue] = pollfd(fd: descriptor?.rawValue ?? -1, events: Int16(events), revents: 0)
  }

  /// Whether poll(2) reported any of `events` for `slot` in the last wait
  /// (by default any event at all, POLLHUP and POLLERR included: a read
  /// then returns the end of file or the error).
  func isReady(_ slot: Slot, for events: CInt = -1) -> Bool {
    entries[slot.rawValue].revents & Int16(truncatingIfNeeded: events) != 0
  }

  /// Waits until a watched descriptor is ready or `timeout` ms have passed
  /// (-1: no limit). Returns false if the time ran out.
  mutating func wait(timeout: CInt) throws(Failure) -> Bool {
    try orFailure("poll") { () throws(Errno) in try poll(&entries, timeout: timeout) } > 0
  }
}
