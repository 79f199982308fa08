// How many columns a character takes on a terminal: what wcwidth(3) says,
// from our own small table so that it does not depend on the locale the
// program runs in (a static executable may have none).

/// Columns one Unicode scalar takes: 0 (combining marks, format
/// characters such as the zero-width joiner), 2 (East Asian wide and
/// full-width characters, emoji shown as pictures) or 1.
public func displayWidth(_ scalar: Unicode.Scalar) -> Int {
  let value = scalar.value
  if value < 0x20 || (0x7F..<0xA0).contains(value) { return 0 }
  if value < 0x300 { return 1 }
  switch scalar.properties.generalCategory {
  case .nonspacingMark, .enclosingMark, .format: return 0
  default: break
  }
  if (0x1160...0x11FF).contains(value) { return 0 }  // Hangul vowels and finals join the syllable
  if scalar.properties.isEmojiPresentation { return 2 }
  return wideRanges.contains { $0.contains(value) } ? 2 : 1
}

/// Columns one character (a grapheme cluster: "e" + U+0301, a flag, an
/// emoji with its variation selector) takes: its scalars' widths added,
/// at most 2; an emoji made a picture by U+FE0F takes 2.
public func displayWidth(_ character: Character) -> Int {
  var total = 0
  for scalar in character.unicodeScalars {
    if scalar.value == 0xFE0F, character.unicodeScalars.first!.properties.isEmoji { return 2 }
    total += displayWidth(scalar)
  }
  return min(total, 2)
}

/// Columns a string takes.
public func displayWidth(_ text: some Sequence<Character>) -> Int {
  text.reduce(0) { $0 + displayWidth($1) }
}

/// East Asian Wide (W) and Fullwidth (F) blocks (Unicode's
/// EastAsianWidth.txt, in ranges); emoji are found by their property.
private let wideRanges: [ClosedRange<UInt32>] = [
  0x1100...0x115F, 0x2329...0x232A, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF,
  0x4E00...0x9FFF, 0xA000...0xA4CF, 0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF,
  0xFE10...0xFE19, 0xFE30...0xFE6F, 0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x1F300...0x1F64F,
  0x1F900...0x1F9FF, 0x20000...0x2FFFD, 0x30000...0x3FFFD,
]
