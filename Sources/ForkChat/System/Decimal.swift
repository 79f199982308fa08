// Integers in text, in decimal, without the standard library's formatter.
//
// "\(port)", "\(pid)", "\(status)": each went through the standard
// library's BinaryInteger description, a formatter for any radix
// (_BinaryIntegerToASCII and _description(radix:uppercase:)) whose code,
// with the description witnesses, lies in three 64 kB windows of
// libswiftCore's undivided .text that nothing else a chat runs touches.
// The kernel maps each window whole on the first fault in it: 192 kB of a
// chat process's resident memory, for a few hundred bytes of code run
// (docs/package.md). This overload, more specific than the standard
// library's for CustomStringConvertible, writes the same text; the
// compiler picks it for every integer interpolated in both modules.

extension DefaultStringInterpolation {
  /// The decimal digits of `value`, a minus sign first if it is negative:
  /// what `value.description` is.
  @inlinable
  public mutating func appendInterpolation<T: BinaryInteger>(_ value: T) {
    if let magnitude = UInt64(exactly: value.magnitude) {
      appendLiteral(decimalText(negative: value < 0, magnitude: magnitude))
    } else {
      appendLiteral(value.description)  // wider than 64 bits: never in forkchat
    }
  }
}

/// "-42" from (true, 42).
@usableFromInline
func decimalText(negative: Bool, magnitude: UInt64) -> String {
  // 20 digits and a sign at most.
  withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { buffer in
    var start = buffer.count
    var rest = magnitude
    repeat {
      start -= 1
      buffer[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
      rest /= 10
    } while rest != 0
    if negative {
      start -= 1
      buffer[start] = UInt8(ascii: "-")
    }
    return String(decoding: UnsafeBufferPointer(rebasing: buffer[start...]), as: UTF8.self)
  }
}
