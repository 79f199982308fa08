// What makes a name look like another one, and the rule that refuses it
// (docs/room.md, "Names that look like others"). Three ways a name can
// pass for someone else's on a terminal:
//
// - mixed scripts: Cyrillic "а" (U+0430) in "аdmin" is drawn as Latin "a";
//   a name's letters must all come from one script (Latin, Greek,
//   Cyrillic ...; Han, Hiragana and Katakana count as one, as Japanese
//   writes them together);
// - compatibility forms: fullwidth "ＡＢＣ", the ligature "ﬁ", the letter
//   "ǅ" are other code points for text a plain name already writes; a
//   letter whose NFKC form differs (Unicode's Changes_When_NFKC_Casefolded,
//   after lower-casing) is refused;
// - invisible characters (Default_Ignorable_Code_Point: U+3164 HANGUL
//   FILLER is a "letter"); the joiners and spaces are no letters anyway.
//
// "Élodie", "François", "Zoé", "Strauß", "Ὀδυσσεύς" pass. No Foundation:
// the stdlib's Unicode.Scalar.Properties gives the properties, and the
// table below the scripts (the blocks of the scripts a class writes names
// in; a letter outside them counts as the script of its 128-code-point
// block, so two such blocks never mix).
//
// Pure: no system call.

/// A script, as this file tells them apart.
enum NameScript: Equatable {
  case latin, greek, cyrillic, armenian, hebrew, arabic, indic, thai, georgian, hangul, japaneseOrHan
  /// Outside the table: the script of this 128-code-point block.
  case block(UInt32)

  /// The script of a letter.
  init(_ scalar: Unicode.Scalar) {
    let value = scalar.value
    for (range, script) in Self.table where range.contains(value) {
      self = script
      return
    }
    self = .block(value >> 7)
  }

  static let table: [(ClosedRange<UInt32>, NameScript)] = [
    (0x0041...0x024F, .latin), (0x1E00...0x1EFF, .latin), (0x2C60...0x2C7F, .latin),
    (0xA720...0xA7FF, .latin),
    (0xAB30...0xAB6F, .latin), (0x0370...0x03FF, .greek), (0x1F00...0x1FFF, .greek),
    (0x0400...0x052F, .cyrillic), (0x1C80...0x1C8F, .cyrillic), (0x2DE0...0x2DFF, .cyrillic),
    (0xA640...0xA69F, .cyrillic), (0x0530...0x058F, .armenian), (0x0590...0x05FF, .hebrew),
    (0x0600...0x06FF, .arabic), (0x0750...0x077F, .arabic), (0x08A0...0x08FF, .arabic),
    (0x0900...0x0DFF, .indic), (0x0E00...0x0E7F, .thai), (0x10A0...0x10FF, .georgian),
    (0x1C90...0x1CBF, .georgian), (0x1100...0x11FF, .hangul), (0x3130...0x318F, .hangul),
    (0xAC00...0xD7AF, .hangul), (0x3040...0x30FF, .japaneseOrHan), (0x31F0...0x31FF, .japaneseOrHan),
    (0x3400...0x4DBF, .japaneseOrHan), (0x4E00...0x9FFF, .japaneseOrHan), (0x20000...0x3FFFF, .japaneseOrHan),
  ]
}

/// Why a name (letters only: the rest is checked by `validateName`) could
/// pass for another one, or nil.
func lookalikeProblem(_ name: String) -> NameProblem? {
  var script: NameScript? = nil
  for scalar in name.unicodeScalars where !scalar.isASCII || scalar.properties.isAlphabetic {
    let properties = scalar.properties
    if properties.isDefaultIgnorableCodePoint { return .invisible }
    // ß and final ς change only under case folding (to "ss", "σ"), which
    // is no compatibility form.
    if !["ß", "ς"].contains(scalar),
      properties.lowercaseMapping.unicodeScalars.contains(where: \.properties.changesWhenNFKCCaseFolded)
    {
      return .compatibility
    }
    // Combining marks (an Arabic vowel sign, a Devanagari matra) belong to
    // the letter before them.
    if properties.generalCategory == .nonspacingMark || properties.generalCategory == .spacingMark {
      continue
    }
    let its = NameScript(scalar)
    if let script, script != its { return .mixedScripts }
    script = its
  }
  return nil
}
