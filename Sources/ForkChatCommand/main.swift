import ForkChat
import Glibc

// Descriptors 0, 1 and 2 come first: a socket must never take one of them.
do {
  try openMissingStandardDescriptors()
} catch {
  notice("open /dev/null: \(error)")
  exit(ExitStatus.failure)
}

// A peer that closes while we write must not kill us with SIGPIPE: the
// write fails with EPIPE instead, and the session reports it. Likewise a
// file that reaches its size limit (RLIMIT_FSIZE): EFBIG, "File too large",
// instead of a silent death by SIGXFSZ.
signal(SIGPIPE, SIG_IGN)
signal(SIGXFSZ, SIG_IGN)

let status: CInt
do {
  switch try parse(Array(commandLineArguments().dropFirst())) {
  case .help(let text):
    try? FileDescriptor.standardOutput.writeAll(Array(text.utf8))
    status = ExitStatus.success
  case .version:
    try? FileDescriptor.standardOutput.writeAll(Array("\(version)\n".utf8))
    status = ExitStatus.success
  case .run(let subcommand, let options):
    if options.trace { Trace.start() }
    switch subcommand {
    case .listen: status = listenAndChat(options)
    case .connect: status = connectAndChat(options)
    case .room: status = runRoom(options)
    case .check: status = runCheck(options.check)
    }
  }
} catch {
  try? FileDescriptor.standardError.writeAll(Array(error.text.utf8))
  status = ExitStatus.usage
}
Trace.event(.main, "exit", "\(status)")
exit(status)
