import CForkChat
import Glibc

// Closing what a freshly forked child does not own: the room's spawner
// and readers fork without exec, so close-on-exec does not help them.

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
