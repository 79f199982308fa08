// Does a string begin with an ASCII prefix, as String.hasPrefix says, on
// the path every chat runs without the standard library's slow path; and
// a string literal's bytes, as they are in the binary.
//
// String.hasPrefix checks that the prefix ends on a character boundary,
// and for that runs _StringGuts._slowRoundDownToNearestCharacter, code in
// a 64 kB window of libswiftCore's undivided .text that nothing else a
// chat runs touches: the kernel maps that window whole (docs/package.md).
// An ASCII byte after an ASCII prefix that does not end in "\r" always
// begins a new character, so the bytes decide; any other byte after it (a
// combining mark, say) leaves the question to hasPrefix.

extension StaticString {
  /// The literal's UTF-8 bytes, where the binary holds them: no copy, no
  /// array, nothing to retain (what a room reader or a line's "< " mark
  /// appends, compares or scans).
  var utf8Bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
}

extension String {
  /// `hasPrefix(prefix)`, for a prefix of ASCII bytes not ending in "\r".
  public func hasASCIIPrefix(_ prefix: StaticString) -> Bool {
    let bytes = prefix.utf8Bytes
    var utf8 = self.utf8.makeIterator()
    for byte in bytes {
      guard utf8.next() == byte else { return false }
    }
    guard let next = utf8.next(), next >= 0x80 else { return true }
    return hasPrefix(String(decoding: bytes, as: UTF8.self))
  }
}
