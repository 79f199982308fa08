/// Finds the quit word typed as a line of its own ("exit\n") in the bytes
/// read from a terminal, however the reads split the lines.
///
/// A terminal in canonical mode hands over one line per read(2), but a
/// paste or a line longer than the buffer arrives in pieces, so the
/// detector remembers whether the next byte starts a line and how much of
/// the word the current line has matched so far.
public struct QuitWordDetector: Sendable {
  let word: [UInt8]
  private var matched = 0  // bytes of `word` the current line has matched
  private var lineIsCandidate = true  // false once the line differs from `word`

  /// `word` must be non-empty and hold no newline.
  public init(word: [UInt8]) {
    precondition(!word.isEmpty && !word.contains(10))
    self.word = word
  }

  /// Scans the next bytes of input. Returns the number of bytes up to and
  /// including the newline that ends a line equal to the word (a "\r\n"
  /// ending is accepted too), or nil if no such line ends in `bytes`.
  public mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Int? {
    for (index, byte) in bytes.enumerated() {
      if byte == 10 {  // "\n"
        if lineIsCandidate && matched == word.count { return index + 1 }
        matched = 0
        lineIsCandidate = true
      } else if lineIsCandidate {
        if matched < word.count && byte == word[matched] {
          matched += 1
        } else if !(matched == word.count && byte == 13) {  // "\r" just before "\n"
          lineIsCandidate = false
        }
      }
    }
    return nil
  }

  public mutating func scan(_ bytes: [UInt8]) -> Int? {
    bytes.withUnsafeBytes { scan($0) }
  }
}
