import Glibc

/// Memory taken with malloc(3), which returns NULL when there is none to be
/// had (a tight RLIMIT_AS, say) instead of stopping the program: Swift's
/// own allocation would end it with "Fatal error: failed to allocate" and a
/// stack trace. A session takes its buffers this way before it starts, so
/// that running out of memory is one line at the start, not a crash in the
/// middle of a chat.
///
/// The corresponding C functions are `malloc` and `free`.
public func allocateMemory(_ count: Int, for what: String) throws(Failure) -> UnsafeMutableRawBufferPointer {
  guard let start = malloc(count) else {
    throw Failure("malloc of \(count / 1024) KiB for \(what)", Errno.current)
  }
  return UnsafeMutableRawBufferPointer(start: start, count: count)
}

/// Gives back memory from `allocateMemory`.
public func freeMemory(_ memory: UnsafeMutableRawBufferPointer) {
  free(memory.baseAddress)
}
