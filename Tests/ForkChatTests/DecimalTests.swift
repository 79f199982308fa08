import ForkChat
import Testing

// System/Decimal.swift: the interpolation of an integer writes what its
// description does, for each width, sign and limit.
@Suite("Integers in text")
struct DecimalTests {
  @Test func sameTextAsDescription() {
    let signed: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, 65_535, -65_536, .max, .min]
    for value in signed {
      #expect("\(value)" == value.description)
      #expect("\(Int(value))" == Int(value).description)
      #expect("<\(value)>" == "<" + value.description + ">")
    }
    let unsigned: [UInt64] = [0, 7, 10, 1 << 32, .max]
    for value in unsigned { #expect("\(value)" == value.description) }
    #expect("\(Int8.min) \(Int8.max) \(UInt8.max)" == "-128 127 255")
    #expect("\(Int16.min) \(UInt16.max)" == "-32768 65535")
    #expect("\(Int32.min) \(Int32.max) \(UInt32.max)" == "-2147483648 2147483647 4294967295")
    #expect("\(Int128.max)" == Int128.max.description)
    #expect("\(Int128.min)" == Int128.min.description)
  }
}
