// swift-tools-version:6.0
// forkchat: two-party TCP chat, one process per direction (fork after connect).
// No package dependencies: the Swift toolchain and Glibc only.
import PackageDescription

let package = Package(
  name: "forkchat",
  products: [
    .executable(name: "forkchat", targets: ["ForkChatCommand"])
  ],
  targets: [
    // The few Linux calls that Glibc's Swift module does not import (prctl is variadic).
    .target(name: "CForkChat"),
    // The work: descriptors, sockets, signals, processes, the session.
    // ENABLE_MOCKING in the debug build (`swift test`) only: the tests
    // script the results of system calls (System/Syscalls.swift), as
    // swift-system's do; the release build makes the calls and nothing else.
    .target(
      name: "ForkChat", dependencies: ["CForkChat"],
      swiftSettings: [.define("ENABLE_MOCKING", .when(configuration: .debug))]),
    // main and the command line.
    // (Its folder is not Sources/forkchat: that would differ from Sources/ForkChat
    // only by case, and break a checkout on a case-insensitive file system.)
    .executableTarget(name: "ForkChatCommand", dependencies: ["ForkChat"]),
    .testTarget(name: "ForkChatTests", dependencies: ["ForkChat", "ForkChatCommand"]),
  ],
  swiftLanguageModes: [.v6]
)
