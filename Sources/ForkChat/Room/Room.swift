import Glibc

// forkchat room: a chat room, the Unix way. docs/room.md has the diagram
// and the argument; in short, three kinds of process:
//
//   hub (RoomHub.swift, the main process): reads every client's lines from
//     one pipe, puts each in the room's log once (RoomLog.swift), and sends
//     every client the log from its cursor on; names and commands
//     (RoomMembers.swift, RoomCommands.swift)
//   spawner (RoomSpawner.swift): forks one reader per client, reaps them
//   reader (RoomReader.swift): its client's socket ──▶ the room pipe
//
// This file opens the room: the listening socket, the pipe, the socket
// pair to the spawner, the spawner itself; then the hub runs.

/// `forkchat room`: how many clients, how big a log (where it listens is
/// in `Options`).
public struct RoomOptions: Equatable, Sendable {
  public var maxClients = 1000
  /// The log's size in MiB: the most the room holds for its clients.
  public var logMiB = RoomLimits.defaultLogMiB
  /// Seconds a client may take nothing while lines wait for it.
  public var stallSeconds = RoomLimits.defaultStallSeconds
  /// Seconds after which a client that stopped answering (its machine
  /// asleep, its Wi-Fi gone) is dropped, idle or busy: TCP keepalive and
  /// TCP_USER_TIMEOUT on its socket, as the two-party chat's --dead-peer;
  /// 0: never (the kernel's own limits).
  public var deadPeerSeconds = SessionOptions.defaultDeadPeer
  /// Places one address may hold (a whole class behind one NAT must fit);
  /// nil: `RoomLimits.defaultMaxPerHost`, for other hosts only (the room's
  /// own machine, loopback, is not limited unless this is given).
  public var maxPerHost: Int? = nil
  /// When the room is full, a client that has sent nothing since it came
  /// for this long gives its place to the newcomer.
  public var silentSeconds = RoomLimits.defaultSilentSeconds
  public init() {}

  /// The burst each client may send at once (flood control): its share
  /// of the log.
  public var floodBurst: Int { RoomLimits.floodBurst(logBytes: logMiB << 20, maxClients: maxClients) }
}

/// Runs a chat room until a signal (SIGINT, SIGTERM, SIGHUP) ends it: then
/// every reader process is stopped and reaped, and the process dies of
/// that signal. Returns an exit status only if the room cannot start, or
/// fails (1).
public func runRoom(_ settings: Options) -> CInt {
  // One descriptor per client in the hub, and a few of its own; the soft
  // limit is often 1024, the hard one far higher (getrlimit(2)).
  let reserve = 16
  var options = settings.room
  let limit = raiseOpenFileLimit(to: UInt(options.maxClients + reserve))
  if limit < UInt(options.maxClients + reserve) {
    options.maxClients = max(1, Int(limit) - reserve)
    notice("at most \(options.maxClients) clients: the limit on open files is \(limit) (ulimit -n)")
  }
  let listener: Listener
  do throws(Failure) {
    listener = try Listener.open(port: settings.port, bindAddress: settings.bindAddress, family: .any)
  } catch {
    notice(error.description)
    return ExitStatus.failure
  }
  let inbox: FileDescriptor
  let outbox: FileDescriptor
  let control: FileDescriptor
  let spawnerEnd: FileDescriptor
  do throws(Failure) {
    do {
      (inbox, outbox) = try makePipe()
    } catch {
      throw Failure("pipe", error)
    }
    do {
      // Only the hub reads the pipe: non-blocking, so it can read what is
      // there and go back to poll. The write end stays blocking: a reader
      // waits while the pipe is full (back pressure), and a blocking write
      // of at most PIPE_BUF bytes is atomic.
      try inbox.setNonBlocking()
      try listener.socket.setNonBlocking()
    } catch {
      throw Failure("fcntl", error)
    }
    do {
      (control, spawnerEnd) = try makeMessageSocketPair()
    } catch {
      throw Failure("socketpair", error)
    }
  } catch {
    notice(error.description)
    return ExitStatus.failure
  }
  Trace.event(.room, "pipe", "read=\(inbox.rawValue) write=\(outbox.rawValue)")
  let signals: SignalPipe
  do {
    signals = try SignalPipe.install()
  } catch {
    notice("pipe: \(error)")
    return ExitStatus.failure
  }
  // The spawner, forked now, while the hub is small.
  let spawner: pid_t
  do {
    spawner = try forkChild(signals: signals, parentRole: .room, closing: [])
  } catch {
    notice("fork: \(error)")
    _ = signals.uninstall()
    return ExitStatus.failure
  }
  if spawner == 0 {
    // The spawner keeps its end of the socket pair, the pipe's write end
    // and stderr: not the listening socket, not the pipe's read end. It
    // ends with _exit (RoomSpawner.stop).
    closeDescriptors(except: [spawnerEnd.rawValue, outbox.rawValue])
    RoomSpawner(
      control: spawnerEnd, room: outbox, maxClients: options.maxClients, floodBurst: options.floodBurst
    )
    .run()
  }
  // The hub never writes into the room pipe: once the spawner and every
  // reader are gone, the hub reads end of file there.
  outbox.closeIgnoringErrors()
  spawnerEnd.closeIgnoringErrors()
  notice("room open on \(listener.description), at most \(options.maxClients) clients")
  RoomHub(
    listener: listener, signals: signals, inbox: inbox, control: control, spawner: spawner, options: options
  ).run()
}
