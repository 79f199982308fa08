import CForkChat
import Glibc

// The terminal as the chat screen uses it: its modes, saved once and put
// back on every way out; its size; and the one way anything is drawn on
// it, one write(2) per update.

/// The terminal's settings (termios(3)), saved when the chat starts.
///
/// Keeps its own descriptor of the terminal (a close-on-exec duplicate of
/// standard input): the fork session's parent closes standard input, which
/// belongs to the child, yet must restore the modes and discard pending
/// input once the child is gone.
final class TerminalMode {
  let terminal: FileDescriptor
  let saved: termios

  private init(terminal: FileDescriptor, saved: termios) {
    self.terminal = terminal
    self.saved = saved
  }

  /// Saves the settings of the terminal on standard input; nil if standard
  /// input is not a terminal.
  ///
  /// The corresponding C functions are `tcgetattr` and `fcntl(F_DUPFD_CLOEXEC)`.
  static func save() -> TerminalMode? {
    var settings = termios()
    guard tcgetattr(STDIN_FILENO, &settings) == 0 else { return nil }
    let copy = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3)
    guard copy >= 0 else { return nil }
    return TerminalMode(terminal: FileDescriptor(rawValue: copy), saved: settings)
  }

  /// Raw input for the line editor: every key arrives at once (no ICANON),
  /// nothing is echoed by the kernel (no ECHO: the editor draws), Ctrl-V
  /// and Ctrl-O are keys (no IEXTEN), Ctrl-S does not freeze the screen (no
  /// IXON), Enter arrives as "\r" (no ICRNL). ISIG stays: Ctrl-C and
  /// Ctrl-Z remain SIGINT and SIGTSTP. NOFLSH: those signals do not throw
  /// away output already written, so an update is never cut by the kernel.
  /// Output processing (OPOST, "\n" to "\r\n") stays. Ctrl-\ (VQUIT) is
  /// switched off: its SIGQUIT would kill both processes with a core dump,
  /// where nothing can give the terminal back (--plain keeps it).
  ///
  /// The corresponding C function is `tcsetattr`.
  func enterRaw() {
    var raw = saved
    raw.c_lflag &= ~tcflag_t(ICANON | ECHO | IEXTEN)
    raw.c_lflag |= tcflag_t(ISIG | NOFLSH)
    raw.c_iflag &= ~tcflag_t(IXON | ICRNL | INLCR | IGNCR)
    withUnsafeMutableBytes(of: &raw.c_cc) { cc in
      cc[Int(VMIN)] = 1
      cc[Int(VTIME)] = 0
      cc[Int(VQUIT)] = 0  // _POSIX_VDISABLE on Linux
    }
    _ = tcsetattr(terminal.rawValue, TCSANOW, &raw)
  }

  /// Puts back the settings saved at the start (`stty -g` reads the same
  /// again).
  func restore() {
    var settings = saved
    _ = tcsetattr(terminal.rawValue, TCSANOW, &settings)
  }

  /// Throws away what was typed and not read yet, so that text meant for
  /// the peer never reaches the shell.
  ///
  /// The corresponding C function is `tcflush(TCIFLUSH)`.
  func discardInput() {
    _ = tcflush(terminal.rawValue, TCIFLUSH)
  }

  /// In the fork session's child, right after fork(): when the parent
  /// dies, whatever killed it (SIGKILL too, which it cannot catch), this
  /// process puts the terminal back before it ends: pending input
  /// discarded, the saved modes, the whole screen scrolling (any scroll
  /// region reset: the chat screen sets none, but a program run before it
  /// may have; the cursor kept where it is, since the shell may have drawn
  /// its prompt there already). Without it, under
  /// a shell that does not restore the modes itself (dash), the terminal
  /// stayed without echo and without Enter. The work is done by a C signal
  /// handler (SIGUSR1, sent by the kernel: prctl PR_SET_PDEATHSIG) with
  /// async-signal-safe calls only. If the parent is gone already, that is
  /// done now.
  func restoreWhenParentDies(parentPid: pid_t) {
    var settings = saved
    // CAN, SGR 0, DECSC, DECSTBM (whole screen: it homes the cursor), DECRC.
    let reset = Array("\u{18}\u{1b}[0m\u{1b}7\u{1b}[r\u{1b}8".utf8)
    let output = isatty(STDOUT_FILENO) == 1 ? STDOUT_FILENO : -1
    _ = reset.withUnsafeBufferPointer { bytes in
      bytes.withMemoryRebound(to: CChar.self) { text in
        forkchat_restore_terminal_when_parent_dies(
          STDIN_FILENO, &settings, output, text.baseAddress, UInt(text.count), ChildExit.parentGone.rawValue)
      }
    }
    if getppid() != parentPid { _ = raise(SIGUSR1) }
  }

  /// The end of the chat at a terminal, whatever ended it: pending input
  /// discarded, settings restored, our descriptor closed.
  func end() {
    discardInput()
    restore()
    terminal.closeIgnoringErrors()
  }
}

/// The size of the terminal on standard output (TIOCGWINSZ, tty_ioctl(4)),
/// at least 3 rows and 10 columns for the arithmetic of the layout.
struct WindowSize: Equatable {
  var rows: Int
  var columns: Int

  static func current() -> WindowSize {
    var rows: UInt16 = 0
    var columns: UInt16 = 0
    if forkchat_window_size(STDOUT_FILENO, &rows, &columns) != 0 || rows == 0 || columns == 0 {
      (rows, columns) = (24, 80)
    }
    return WindowSize(rows: max(Int(rows), 3), columns: max(Int(columns), 10))
  }
}

/// Writes one screen update with one write(2), every signal blocked.
///
/// Why it is whole: a write(2) to a terminal holds the terminal's write
/// lock for the whole call (Linux, `tty_write_lock` in drivers/tty/tty_io.c),
/// so the other process's update comes entirely before or entirely after
/// it. A write can still return short, having written part of the bytes,
/// if a signal must be handled in the middle (the kernel checks between
/// 2 KiB chunks and while it waits for room); the rest would then be a
/// second write, and the other process could draw in between. With every
/// signal blocked, none can: only SIGKILL (the process is gone; the
/// survivor redraws or restores, each update starting with CAN, which ends
/// a cut escape sequence) and SIGSTOP cannot be blocked. A SIGSTOP in the
/// middle of an update (`kill -STOP`) lets the other process draw in
/// between, and the cursor is then where that one left it: the rest of
/// the update is not written as it is, but from the update's last
/// checkpoint at or before the cut (`Update.checkpoint`), after that
/// checkpoint's resume bytes (CAN, and the cursor put back where the
/// update had it). The bytes from a checkpoint on draw the same cells
/// whether written once or again, so the part written before the stop
/// is drawn over, never shifted.
///
/// With --trace, each update is one line once it is written: `draw PART
/// bytes=N` by `role`, the process or thread that wrote it (`part`: which
/// part of the screen; docs/design.md lists them).
func writeUpdate(
  _ bytes: [UInt8], checkpoints: [Update.Checkpoint] = [], by role: Role, part: String
) throws(Errno) {
  do {
    let previous = SignalSet.all.block()
    defer { previous.setAsMask() }
    var from = 0  // the update's bytes still to write start here, after `resume`
    var resume: [UInt8] = []
    while true {
      let chunk = resume + bytes[from...]
      let written = try chunk.withBytes { buffer throws(Errno) in try writeSome(buffer) }
      if written == chunk.count { break }
      // Cut (SIGSTOP): go on from the last checkpoint the terminal reached.
      let reached = from + max(0, written - resume.count)
      let checkpoint = checkpoints.last { $0.offset <= reached } ?? Update.Checkpoint(offset: 0, resume: [])
      from = checkpoint.offset
      resume = [0x18] + checkpoint.resume
    }
  }
  if Trace.isOn { Trace.event(role, "draw", "\(part) bytes=\(bytes.count)") }
}

/// One write(2) to standard output: EINTR retried, EAGAIN (a descriptor
/// made non-blocking by another process) waits for room with poll(2).
private func writeSome(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
  while true {
    do {
      return try FileDescriptor.standardOutput.write(buffer)
    } catch .wouldBlock {
      try FileDescriptor.standardOutput.waitUntilReady(for: Int16(POLLOUT), onInterrupt: {})
    }
  }
}

/// Control sequences (ECMA-48, as xterm and tmux understand them), built
/// into one update.
struct Update {
  var bytes: [UInt8]

  /// A place in the update from which its bytes can be written again
  /// after `resume` (and a CAN) if a SIGSTOP cuts the write there or
  /// later: the cells they draw come out the same (`writeUpdate`).
  struct Checkpoint {
    let offset: Int
    let resume: [UInt8]
  }
  /// The start, and each cursor move: what follows a move draws at a
  /// place it names itself.
  private(set) var checkpoints: [Checkpoint] = []

  init() {
    bytes = [0x18]  // CAN: ends any sequence a cut update left open
    bytes.reserveCapacity(256)
  }

  /// Marks a checkpoint here: from here on, the bytes draw the same after
  /// `resume` as after what came before.
  mutating func checkpoint(resume: [UInt8] = []) {
    checkpoints.append(Checkpoint(offset: bytes.count, resume: resume))
  }

  mutating func text(_ text: String) { bytes += Array(text.utf8) }
  mutating func raw(_ text: [UInt8]) { bytes += text }
  mutating func control(_ sequence: String) { bytes += Array("\u{1b}\(sequence)".utf8) }

  /// CUP: the cursor to `row`, `column` (from 1).
  mutating func move(row: Int, column: Int = 1) {
    checkpoint()
    bytes += [0x1B, UInt8(ascii: "[")]
    number(row)
    bytes.append(UInt8(ascii: ";"))
    number(column)
    bytes.append(UInt8(ascii: "H"))
  }

  private mutating func number(_ value: Int) {
    if value >= 10 { number(value / 10) }
    bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
  }
  /// EL 2: blank the cursor's row.
  mutating func clearRow() { bytes += [0x1B, UInt8(ascii: "["), UInt8(ascii: "2"), UInt8(ascii: "K")] }
  /// DECSC / DECRC: save and restore the cursor (position and attributes).
  mutating func saveCursor() { bytes += [0x1B, UInt8(ascii: "7")] }
  mutating func restoreCursor() { bytes += [0x1B, UInt8(ascii: "8")] }
  /// DECSTBM: only rows `top` to `bottom` scroll; nil: the whole screen.
  mutating func scrollRegion(_ rows: ClosedRange<Int>?) {
    control(rows.map { "[\($0.lowerBound);\($0.upperBound)r" } ?? "[r")
  }
  /// SGR: colour and attributes ("0": back to normal).
  mutating func style(_ parameters: String) { control("[\(parameters)m") }

  /// Writes the update (`writeUpdate`): `part` of the screen, by `role`.
  func write(by role: Role, _ part: String) throws(Errno) {
    try writeUpdate(bytes, checkpoints: checkpoints, by: role, part: part)
  }
}
