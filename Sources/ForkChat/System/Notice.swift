// Notices: forkchat's one way of telling the person something, on
// standard error, in err(3) style ("forkchat: connect to HOST port P:
// Connection refused").

/// While the chat screen is up and standard error is its terminal, where
/// notices go instead: a row of the conversation (Screen/Screen.swift).
///
/// nonisolated(unsafe): set and cleared by the thread that draws the
/// screen (and, after fork(), by the child for itself); the threads
/// session's sender thread never prints a notice (the main thread reports
/// its failures).
nonisolated(unsafe) var noticeSink: ((String) -> Void)? = nil

/// Writes a notice or error line to standard error: "forkchat: TEXT\n".
///
/// Unbuffered (one write(2)), so it is safe right after fork() and never
/// mixes with the peer's bytes on standard output.
public func notice(_ text: String) {
  if let noticeSink {
    noticeSink(text)
    return
  }
  var line = Array("forkchat: \(text)\n".utf8)
  line.withUnsafeMutableBytes { buffer in
    try? FileDescriptor.standardError.writeAll(UnsafeRawBufferPointer(buffer))
  }
}
