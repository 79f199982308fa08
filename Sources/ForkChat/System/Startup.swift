import CForkChat
import Glibc

// What a Unix tool that opens sockets does before anything else: make sure
// descriptors 0, 1 and 2 are open, and read its arguments without needing
// a descriptor.

/// Opens /dev/null on each standard descriptor (0, 1, 2) that is closed, as
/// a shell's `<&-`, `>&-` or `2>&-` leaves it. open(2), socket(2) and pipe(2)
/// return the lowest free number: without this, the socket would become
/// descriptor 2 and every notice would go to the peer as chat data, or
/// descriptor 0 or 1 and the peer's bytes would be sent back to it. A closed
/// stdin then reads as empty; a closed stdout or stderr discards what is
/// written to it, as the user asked. Throws the error of open(2).
public func openMissingStandardDescriptors() throws(Errno) {
  for standard in [FileDescriptor.standardInput, .standardOutput, .standardError] where !standard.isOpen {
    // The lower numbers are open by now, so open(2) returns this one. Not
    // close-on-exec: standard descriptors are the ones a program passes on.
    let flags = standard == .standardInput ? O_RDONLY : O_WRONLY
    let opened = try FileDescriptor.open("/dev/null", flags, closeOnExec: false)
    if opened != standard {
      try opened.duplicate(as: standard)
      opened.closeIgnoringErrors()
    }
  }
}

/// The program's arguments (argv, the program's name first), as the C
/// library handed them to the executable before main. Needs no descriptor,
/// unlike Swift's `CommandLine.arguments` in a static executable, which
/// reads /proc and finds no argument at all under `prlimit --nofile=3`.
public func commandLineArguments() -> [String] {
  guard let arguments = forkchat_arguments() else { return CommandLine.arguments }
  // String(decoding:as:), not String(cString:): the same text (ill-formed
  // UTF-8 repaired alike), by the code every other string a chat makes
  // runs; String(cString:) sat in a 64 kB window of libswiftCore's text
  // of its own (docs/package.md).
  return (0..<Int(forkchat_argument_count())).map {
    let argument = arguments[$0]!
    let bytes = UnsafeRawPointer(argument).assumingMemoryBound(to: UInt8.self)
    return String(decoding: UnsafeBufferPointer(start: bytes, count: strlen(argument)), as: UTF8.self)
  }
}
