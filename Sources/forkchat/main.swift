import ForkChat
import Glibc

// A peer that closes while we write must not kill us with SIGPIPE: the
// write fails with EPIPE instead, and the session reports it.
signal(SIGPIPE, SIG_IGN)

let status: CInt
do {
  switch try parse(Array(CommandLine.arguments.dropFirst())) {
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
    }
  }
} catch {
  try? FileDescriptor.standardError.writeAll(Array(error.text.utf8))
  status = ExitStatus.usage
}
Trace.event(.main, "exit", "\(status)")
exit(status)
