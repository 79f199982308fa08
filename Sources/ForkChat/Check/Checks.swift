import Glibc

// The checks of `forkchat check`, in the order they run. Each starts the
// program afresh (`begin`), does what a person would do (types, sends,
// closes), watches what it shows, what reaches forkchat and its processes
// in /proc, and ends it (`CheckedProgram.stop`) whatever happened.
// A program that does not start fails `starts`, and the others are not run.

/// The names, stable: --json's "name" and the docs use them.
enum CheckName: String, CaseIterable {
  case starts, exchange
  case fullDuplex = "full-duplex"
  case halfClose = "half-close"
  case quitWord = "quit-word"
  case noZombie = "no-zombie"
  case peerEnds = "peer-ends"
  case noNewline = "no-newline"
  case largeMessage = "large-message"
  /// Last: a server without SO_REUSEADDR cannot start again for a minute
  /// after it.
  case restart
}

/// How long forkchat waits for what a working program does at once.
private let prompt = 3.0
/// How long a program may take to start and connect or listen (Python's
/// start on a loaded lab machine included).
private let startLimit = 8.0
/// The pause that lets the program get back to waiting at its keyboard.
private let settle = 0.3

struct Checker {
  let options: CheckOptions
  let words: CheckWords
  let bound: ProcessBound
  /// Ctrl-C and the other stop signals (`CheckInterruption`).
  let interruption: CheckInterruption

  private var alternate: Bool { options.exercise == .alternate }
  /// full-duplex found that the program, handed in as fork or threads,
  /// takes turns: the later checks then give it its turns, so that each
  /// fails only for what it checks.
  var takesTurns = false
  /// Whether the program has turns (the alternating exercise, or a program
  /// found to take them) and speaks first: in the alternating exercise the
  /// client speaks first (sheet, question 3), the server listens first.
  private var programSpeaksFirst: Bool { (alternate || takesTurns) && options.role == .client }
  private var programListensFirst: Bool { (alternate || takesTurns) && options.role == .server }

  func names() -> [CheckName] {
    CheckName.allCases.filter { name in
      switch name {
      case .quitWord: options.quitWord != nil
      case .restart: options.role == .server
      default: true
      }
    }
  }

  /// Runs the checks in order, handing each result to `done` as soon as
  /// it is known; stops early when a stop signal came (`interruption`):
  /// the check it cut short is not among the results.
  mutating func runAll(_ done: (CheckResult) -> Void) -> [CheckResult] {
    var results: [CheckResult] = []
    for name in names() {
      if let first = results.first, !first.passed {
        results.append(CheckResult(name: name.rawValue, passed: false, detail: words.notRun, skipped: true))
      } else {
        let result = run(name)
        if interruption.signal != nil { break }
        if name == .fullDuplex && !alternate && !result.passed { takesTurns = true }
        results.append(result)
      }
      done(results.last!)
    }
    return results
  }

  private func run(_ name: CheckName) -> CheckResult {
    let program: CheckedProgram
    switch begin() {
    case .failure(let failure): return failure.result(name)
    case .success(let started): program = started
    }
    defer { program.stop() }
    switch name {
    case .starts:
      let what =
        options.role == .client
        ? words.t("it connected to forkchat", "il s'est connecté à forkchat")
        : words.t("it accepted forkchat's connection", "il a accepté la connexion de forkchat")
      return pass(name, what + words.t(" (pid \(program.pid))", " (pid \(program.pid))"))
    case .exchange: return exchange(program)
    case .fullDuplex: return alternate ? turns(program) : fullDuplex(program)
    case .halfClose: return halfClose(program, name: name, ending: "\u{4}", said: words.ctrlD)
    case .quitWord:
      let word = options.quitWord ?? ""
      return halfClose(
        program, name: name, ending: word + "\n", said: words.t("the word '\(word)'", "le mot '\(word)'"))
    case .noZombie: return noZombie(program)
    case .peerEnds: return peerEnds(program)
    case .restart: return restart(program)
    case .noNewline: return noNewline(program)
    case .largeMessage: return largeMessage(program)
    }
  }

  // MARK: Starting

  /// Why a start failed, as the check that tried it reports it.
  struct StartProblem: Error {
    let detail: String
    let cause: String?
    let question: String?

    func result(_ name: CheckName) -> CheckResult {
      CheckResult(name: name.rawValue, passed: false, detail: detail, cause: cause, question: question)
    }
  }

  /// Starts the program and waits for the connection: accepted by forkchat
  /// (client) or made by it (server).
  private func begin() -> Result<CheckedProgram, StartProblem> {
    var listener: Listener? = nil
    if options.role == .client {
      do {
        listener = try Listener.open(port: options.port, bindAddress: options.host, family: .any)
        try? listener!.socket.setNonBlocking()
      } catch {
        return .failure(
          StartProblem(
            detail: words.t("forkchat cannot listen: \(error)", "forkchat ne peut pas écouter : \(error)"),
            cause: words.t(
              "another program holds port \(options.port) (a server still running?)",
              "un autre programme occupe le port \(options.port) (un serveur encore lancé ?)"),
            question: nil))
      }
    }
    defer { listener?.socket.closeIgnoringErrors() }
    let program: CheckedProgram
    do {
      program = try CheckedProgram.start(options.command, bound: bound, interruption: interruption)
    } catch {
      return .failure(
        StartProblem(
          detail: words.t("cannot run \(error.reason)", "impossible de lancer \(error.reason)"),
          cause: words.t(
            "the file's name or path is wrong, or it is not executable (run it as 'python3 FILE')",
            "le nom ou le chemin du fichier est faux, ou il n'est pas exécutable (lancez-le par 'python3 FICHIER')"
          ),
          question: nil))
    }
    if let listener {
      program.pump(for: startLimit) { program in
        guard let (socket, _) = try? listener.socket.accept() else { return !program.isRunning }
        program.socket = socket
        return true
      }
    } else {
      let deadline = Clock.now + startLimit
      let addresses =
        (try? resolve(host: options.host ?? "localhost", port: options.port, family: .any)) ?? []
      search: while Clock.now < deadline && program.isRunning {
        for address in addresses {
          if let socket = try? connect(to: address, deadline: Clock.now + 1) {
            program.socket = socket
            break search
          }
        }
        program.pump(for: 0.05)
      }
    }
    if let socket = program.socket {
      try? socket.setNonBlocking()
      return .success(program)
    }
    let problem = startProblem(program)
    program.stop()
    return .failure(problem)
  }

  private func startProblem(_ program: CheckedProgram) -> StartProblem {
    let question = options.role == .client ? words.question(2) : words.question(1)
    let errors = String(decoding: program.errorOutput, as: UTF8.self)
    // The cgroup counts refused forks; under RLIMIT_NPROC, Python's fork
    // fails with EAGAIN (BlockingIOError).
    if bound.refusedForks() > 0 || errors.contains("BlockingIOError") {
      return StartProblem(
        detail: words.t(
          "it made more than \(ProcessBound.limit) processes at once, and forkchat stopped them",
          "il a créé plus de \(ProcessBound.limit) processus à la fois, et forkchat les a arrêtés"),
        cause: words.t(
          "a fork bomb: the son goes on round the loop and forks in turn (end the son with os._exit)",
          "une bombe fork : le fils continue la boucle et fait fork à son tour (terminez le fils par os._exit)"
        ),
        question: words.question(4))
    }
    guard let end = program.end else {
      let detail =
        options.role == .client
        ? words.t(
          "it did not connect to port \(options.port) within \(Int(startLimit)) s",
          "il ne s'est pas connecté au port \(options.port) en \(Int(startLimit)) s")
        : words.t(
          "it did not accept a connection on port \(options.port) within \(Int(startLimit)) s",
          "il n'a pas accepté de connexion sur le port \(options.port) en \(Int(startLimit)) s")
      return StartProblem(
        detail: detail + words.output(program),
        cause: words.t(
          "another port or address than forkchat's, or it waits for something else first",
          "un autre port ou une autre adresse que ceux de forkchat, ou il attend autre chose avant"),
        question: question)
    }
    var cause = words.t("see its error output", "voir sa sortie d'erreur")
    var sheet = question
    if errors.contains("SyntaxError") || errors.contains("IndentationError") {
      cause = words.t(
        "a syntax error: Python did not run the program at all",
        "une erreur de syntaxe : Python n'a pas exécuté le programme")
    } else if errors.contains("can't open file") || errors.contains("No such file") {
      cause = words.t("the file's name or path is wrong", "le nom ou le chemin du fichier est faux")
    } else if errors.contains("Address already in use") {
      cause = words.t(
        "the port is still taken by the previous connection (TIME_WAIT): set SO_REUSEADDR before bind",
        "le port est encore pris par la connexion précédente (TIME_WAIT) : SO_REUSEADDR avant bind")
      sheet = words.reuseQuestion
    } else if errors.contains("Connection refused") {
      cause = words.t(
        "it connects to another port or address than forkchat's",
        "il se connecte à un autre port ou une autre adresse que ceux de forkchat")
    }
    return StartProblem(
      detail: words.ended(program, end) + words.errors(program), cause: cause, question: sheet)
  }

  // MARK: The checks

  private func pass(_ name: CheckName, _ detail: String) -> CheckResult {
    CheckResult(name: name.rawValue, passed: true, detail: detail)
  }

  private func fail(_ name: CheckName, _ detail: String, cause: String?, question: String?) -> CheckResult {
    CheckResult(name: name.rawValue, passed: false, detail: detail, cause: cause, question: question)
  }

  /// Types `line` and waits for it at forkchat (with or without its newline).
  private func typeArrives(_ program: CheckedProgram, _ line: String, within seconds: Double = prompt) -> Bool
  {
    let offset = program.received.count
    program.type(line + "\n")
    return program.pump(for: seconds) { $0.sent(Array(line.utf8), since: offset) }
  }

  /// Sends `line` (and a newline) from forkchat and waits for it on the
  /// program's screen.
  private func sendShown(_ program: CheckedProgram, _ line: String, within seconds: Double = prompt) -> Bool {
    let offset = program.output.count
    program.send(Array((line + "\n").utf8))
    return program.pump(for: seconds) { $0.shows(Array(line.utf8), since: offset) }
  }

  private func notArrived(_ name: CheckName, _ program: CheckedProgram, question: String) -> CheckResult {
    fail(
      name,
      words.t(
        "a line typed at its keyboard did not reach forkchat within \(Int(prompt)) s",
        "une ligne tapée à son clavier n'est pas arrivée à forkchat en \(Int(prompt)) s")
        + words.state(program),
      cause: words.t(
        "it does not read its keyboard (input()), or does not send what it read (sendall)",
        "il ne lit pas son clavier (input()), ou n'envoie pas ce qu'il a lu (sendall)"),
      question: question)
  }

  private func notShown(_ name: CheckName, _ program: CheckedProgram, question: String) -> CheckResult {
    fail(
      name,
      words.t(
        "a line sent by forkchat was not shown within \(Int(prompt)) s",
        "une ligne envoyée par forkchat n'a pas été affichée en \(Int(prompt)) s") + words.state(program),
      cause: words.t(
        "it does not read the socket (recv), or does not print what it received",
        "il ne lit pas la socket (recv), ou n'affiche pas ce qu'il a reçu"),
      question: question)
  }

  private func exchange(_ program: CheckedProgram) -> CheckResult {
    let question = words.question(alternate ? 3 : options.exercise == .threads ? 0 : 4)
    let typed = "bonjour depuis le clavier"
    let sent = "bonjour depuis forkchat"
    if programListensFirst {
      guard sendShown(program, sent) else { return notShown(.exchange, program, question: question) }
      guard typeArrives(program, typed) else { return notArrived(.exchange, program, question: question) }
    } else if programSpeaksFirst {
      guard typeArrives(program, typed) else { return notArrived(.exchange, program, question: question) }
      guard sendShown(program, sent) else { return notShown(.exchange, program, question: question) }
    } else {
      // Both at once, in no order: a program with one process or thread per
      // direction does both, whichever comes first.
      let (output, received) = (program.output.count, program.received.count)
      program.type(typed + "\n")
      program.send(Array((sent + "\n").utf8))
      program.pump(for: prompt) {
        $0.sent(Array(typed.utf8), since: received) && $0.shows(Array(sent.utf8), since: output)
      }
      guard program.sent(Array(typed.utf8), since: received) else {
        return notArrived(.exchange, program, question: question)
      }
      guard program.shows(Array(sent.utf8), since: output) else {
        return notShown(.exchange, program, question: question)
      }
    }
    return pass(
      .exchange,
      words.t(
        "a typed line reached forkchat, and forkchat's line was shown",
        "une ligne tapée est arrivée à forkchat, et celle de forkchat a été affichée"))
  }

  /// A line from forkchat is shown while the program waits at its
  /// keyboard: twice, so that a program that reads the socket first and
  /// then the keyboard (the alternating server) is caught at its second.
  private func fullDuplex(_ program: CheckedProgram) -> CheckResult {
    let question = words.question(options.exercise == .threads ? 0 : 4)
    for line in ["premier message de forkchat", "second message de forkchat"] {
      program.pump(for: settle)
      if sendShown(program, line, within: 2) { continue }
      // Not shown: is it shown once a line is typed (the alternating loop)?
      let afterEnter =
        typeArrives(program, "une ligne tapée", within: 2)
        && program.pump(for: 2) { $0.shows(Array(line.utf8)) }
      if afterEnter {
        return fail(
          .fullDuplex,
          words.t(
            "a line sent by forkchat while it waited at its keyboard was shown only after Enter",
            "une ligne envoyée par forkchat pendant qu'il attendait au clavier n'a été affichée qu'après Entrée"
          ),
          cause: words.t(
            "it reads the keyboard and the socket in turn (the alternating loop of question 3), not one \(options.exercise == .threads ? "thread" : "process") per direction",
            "il lit le clavier puis la socket à tour de rôle (la boucle alternée de la question 3), et non un \(options.exercise == .threads ? "thread" : "processus") par sens"
          ),
          question: question)
      }
      return fail(
        .fullDuplex,
        words.t(
          "a line sent by forkchat while it waited at its keyboard was not shown, even after Enter",
          "une ligne envoyée par forkchat pendant qu'il attendait au clavier n'a pas été affichée, même après Entrée"
        )
          + words.state(program),
        cause: words.t(
          "nothing reads the socket while the keyboard is read",
          "rien ne lit la socket pendant que le clavier est lu"),
        question: question)
    }
    return pass(
      .fullDuplex,
      words.t(
        "forkchat's lines were shown at once while it waited at its keyboard",
        "les lignes de forkchat ont été affichées aussitôt, pendant qu'il attendait au clavier"))
  }

  /// The alternating exercise: the turns of question 3, twice round.
  private func turns(_ program: CheckedProgram) -> CheckResult {
    let question = words.question(3)
    for round in 1...2 {
      let typed = "tour \(round) du programme"
      let sent = "tour \(round) de forkchat"
      if programSpeaksFirst {
        guard typeArrives(program, typed) else {
          guard round == 1 else { return notArrived(.fullDuplex, program, question: question) }
          return deadlock(
            program,
            detail: words.t(
              "the line typed first did not reach forkchat within \(Int(prompt)) s",
              "la première ligne tapée n'est pas arrivée à forkchat en \(Int(prompt)) s"))
        }
        guard sendShown(program, sent) else { return notShown(.fullDuplex, program, question: question) }
      } else {
        guard sendShown(program, sent) else {
          guard round == 1 else { return notShown(.fullDuplex, program, question: question) }
          return deadlock(
            program,
            detail: words.t(
              "forkchat's first line was not shown within \(Int(prompt)) s",
              "la première ligne de forkchat n'a pas été affichée en \(Int(prompt)) s"))
        }
        guard typeArrives(program, typed) else { return notArrived(.fullDuplex, program, question: question) }
      }
    }
    return pass(
      .fullDuplex,
      words.t(
        "two rounds of turns: a line each way, in the order of question 3",
        "deux tours : une ligne dans chaque sens, dans l'ordre de la question 3"))
  }

  private func deadlock(_ program: CheckedProgram, detail: String) -> CheckResult {
    let first =
      programSpeaksFirst
      ? words.t(
        "the client must start by reading its keyboard", "le client doit commencer par lire son clavier")
      : words.t(
        "the server must start by waiting for the client's line",
        "le serveur doit commencer par attendre la ligne du client")
    return fail(
      .fullDuplex, detail + words.state(program),
      cause: words.t(
        "a deadlock: both ends wait for the other (question 3: \(first))",
        "un interblocage : chaque bout attend l'autre (question 3 : \(first))"),
      question: words.question(3))
  }

  /// Ends the program's keyboard (Ctrl-D, or its quit word): forkchat must
  /// see the end of file (a FIN), and what it sends afterwards must still
  /// be shown (fork and threads).
  private func halfClose(_ program: CheckedProgram, name: CheckName, ending: String, said: String)
    -> CheckResult
  {
    let question = words.question(alternate ? 3 : options.exercise == .threads ? 0 : 4)
    if programListensFirst {
      guard sendShown(program, "à toi") else { return notShown(name, program, question: question) }
    }
    program.pump(for: settle)
    let before = program.otherLiveProcesses().count
    program.type(ending)
    program.pump(for: prompt) { $0.peerClosed || !$0.isRunning }
    if program.peerReset {
      return fail(
        name,
        words.t(
          "after \(said), the connection was reset (RST), not ended (FIN)",
          "après \(said), la connexion a été réinitialisée (RST), pas terminée (FIN)"),
        cause: words.t(
          "it closed the socket with data still unread",
          "il a fermé la socket alors que des données n'étaient pas lues"),
        question: question)
    }
    if !program.peerClosed {
      let after = program.otherLiveProcesses().count
      if options.exercise == .fork && after < before {
        return fail(
          name,
          words.t(
            "after \(said), its son ended but forkchat saw no end of file (no FIN)",
            "après \(said), son fils s'est terminé mais forkchat n'a vu aucune fin de fichier (pas de FIN)"),
          cause: words.t(
            "the son closes the socket (close(), or by ending) without shutdown(SHUT_WR): the father still holds it, so no FIN leaves",
            "le fils ferme la socket (close(), ou en se terminant) sans shutdown(SHUT_WR) : le père la détient encore, aucun FIN ne part"
          ),
          question: question)
      }
      return fail(
        name,
        words.t(
          "after \(said), forkchat saw no end of file (no FIN) within \(Int(prompt)) s",
          "après \(said), forkchat n'a vu aucune fin de fichier (pas de FIN) en \(Int(prompt)) s")
          + words.state(program),
        cause: words.t(
          "the end of the keyboard is not handled (input() raises EOFError, readline() returns ''), or the socket is not shut down (shutdown(SHUT_WR))",
          "la fin du clavier n'est pas traitée (input() lève EOFError, readline() renvoie ''), ou la socket n'est pas fermée en écriture (shutdown(SHUT_WR))"
        ),
        question: question)
    }
    if alternate {
      return pass(
        name,
        words.t(
          "after \(said), forkchat saw the end of file (FIN)",
          "après \(said), forkchat a vu la fin de fichier (FIN)"))
    }
    let line = "encore un message après la fin du clavier"
    guard sendShown(program, line) else {
      let ended = !program.isRunning
      return fail(
        name,
        words.t(
          "after \(said) and the FIN, a line sent by forkchat was not shown",
          "après \(said) et le FIN, une ligne envoyée par forkchat n'a pas été affichée")
          + (ended
            ? words.t(": the program had ended", " : le programme s'était terminé") : words.state(program)),
        cause: words.t(
          "the end of the keyboard ends the whole program; only the sending side should end, the receiving side reads until the peer closes",
          "la fin du clavier termine tout le programme ; seul le côté qui envoie doit finir, celui qui reçoit lit jusqu'à la fermeture de l'autre bout"
        ),
        question: question)
    }
    return pass(
      name,
      words.t(
        "after \(said), forkchat saw the end of file (FIN), and its next line was still shown",
        "après \(said), forkchat a vu la fin de fichier (FIN), et sa ligne suivante a encore été affichée"))
  }

  /// Once the sending side has ended (Ctrl-D), no process of the program
  /// stays a zombie: its father has waited for it.
  private func noZombie(_ program: CheckedProgram) -> CheckResult {
    if programListensFirst {
      _ = sendShown(program, "à toi")
    }
    program.pump(for: settle)
    program.type("\u{4}")
    program.pump(for: prompt) { $0.peerClosed || !$0.isRunning }
    var zombieSince: [pid_t: Double] = [:]
    // Long enough for the son to end on a loaded machine, and for a zombie
    // to be seen to stay one (a father that reaps it on SIGCHLD does so at once).
    let deadline = Clock.now + 4
    // No process but the program, for half a second, ends the watch early
    // (one scan of /proc may miss a process in the middle of its exit).
    var emptySince: Double? = nil
    while Clock.now < deadline {
      let processes = processesOfProgram(program.pid, leader: program.leader, bound: bound)
      let zombies = processes.filter { $0.isZombie && $0.parent != getpid() && $0.parent != program.leader }
      let now = Clock.now
      zombieSince = zombieSince.filter { entry in zombies.contains { $0.pid == entry.key } }
      for zombie in zombies where zombieSince[zombie.pid] == nil { zombieSince[zombie.pid] = now }
      if let pid = zombieSince.first(where: { now - $0.value >= 1 })?.key {
        return fail(
          .noZombie,
          words.t(
            "after Ctrl-D its son (pid \(pid)) ended and stayed a zombie (<defunct> in ps): its father never waited for it",
            "après Ctrl-D son fils (pid \(pid)) s'est terminé et est resté zombie (<defunct> dans ps) : son père ne l'a jamais attendu"
          ),
          cause: words.t(
            "the father does not call os.wait() or os.waitpid() when its son ends (SIGCHLD)",
            "le père n'appelle pas os.wait() ou os.waitpid() quand son fils se termine (SIGCHLD)"),
          question: words.question(4))
      }
      // From this same reading of /proc: a second reading could see the son
      // alive in the first and a zombie in the second, and miss it.
      let others = processes.filter { $0.pid != program.pid && !$0.isZombie }
      if zombies.isEmpty && others.isEmpty {
        if now - (emptySince ?? now) >= 0.5 { break }
        emptySince = emptySince ?? now
      } else {
        emptySince = nil
      }
      program.pump(for: 0.1)
    }
    return pass(.noZombie, words.t("no zombie after Ctrl-D", "aucun zombie après Ctrl-D"))
  }

  /// forkchat closes: the program notices, ends within a few seconds with
  /// status 0, and leaves no process behind.
  private func peerEnds(_ program: CheckedProgram) -> CheckResult {
    let question = words.question(alternate ? 3 : options.exercise == .threads ? 0 : 4)
    if programSpeaksFirst {
      guard typeArrives(program, "dernier message") else {
        return notArrived(.peerEnds, program, question: question)
      }
    } else {
      program.pump(for: settle)
    }
    let closed = Clock.now
    program.closeConnection()
    program.pump(for: prompt) { !$0.isRunning }
    guard let end = program.end else {
      return fail(
        .peerEnds,
        words.t(
          "it was still running \(Int(prompt)) s after forkchat closed the connection",
          "il tournait encore \(Int(prompt)) s après la fermeture de la connexion par forkchat")
          + words.state(program),
        cause: options.exercise == .fork
          ? words.t(
            "the father does not stop when recv() returns b'' (the end), or waits for a son still reading the keyboard: end the son (os.kill) first",
            "le père ne s'arrête pas quand recv() renvoie b'' (la fin), ou attend un fils qui lit encore le clavier : terminez d'abord le fils (os.kill)"
          )
          : words.t(
            "it does not stop when recv() returns b'' (the end of the connection)",
            "il ne s'arrête pas quand recv() renvoie b'' (la fin de la connexion)"),
        question: question)
    }
    guard end == .exited(0) else {
      return fail(
        .peerEnds, words.ended(program, end) + words.errors(program),
        cause: words.t(
          "the end of the connection raised an error it does not handle",
          "la fin de la connexion a provoqué une erreur qu'il ne traite pas"),
        question: question)
    }
    program.pump(for: 1) { $0.otherLiveProcesses().isEmpty }
    if let orphan = program.otherLiveProcesses().first {
      return fail(
        .peerEnds,
        words.t(
          "it ended, but left process \(orphan.pid) (\(commandLine(of: orphan.pid))) running: an orphan, still reading the keyboard",
          "il s'est terminé, mais a laissé le processus \(orphan.pid) (\(commandLine(of: orphan.pid))) tourner : un orphelin, qui lit encore le clavier"
        ),
        cause: words.t(
          "the father leaves without ending its son: os.kill(pid, signal.SIGTERM), then os.waitpid",
          "le père s'en va sans terminer son fils : os.kill(pid, signal.SIGTERM), puis os.waitpid"),
        question: words.question(4))
    }
    let seconds = formatSeconds((((program.endedAt ?? closed) - closed) * 10).rounded() / 10)
    return pass(
      .peerEnds,
      words.t(
        "it ended \(seconds) s after forkchat closed, with status 0, leaving no process",
        "il s'est terminé \(seconds) s après la fermeture par forkchat, avec le statut 0, sans laisser de processus"
      ))
  }

  /// The server ends first (killed while connected: its side sends the
  /// FIN, so its port goes to TIME_WAIT) and is started again at once.
  private func restart(_ program: CheckedProgram) -> CheckResult {
    program.pump(for: settle)
    kill(-program.pid, SIGTERM)
    program.pump(for: prompt) { $0.peerClosed }
    program.closeConnection()
    program.stop()
    switch begin() {
    case .success(let again):
      again.stop()
      return pass(
        .restart,
        words.t(
          "started again at once on port \(options.port) after it ended first",
          "relancé aussitôt sur le port \(options.port) après s'être terminé le premier"))
    case .failure(let problem):
      return fail(
        .restart,
        words.t(
          "started again at once after it ended first: ",
          "relancé aussitôt après s'être terminé le premier : ")
          + problem.detail,
        cause: problem.cause, question: words.reuseQuestion)
    }
  }

  /// A message without a newline, as the sheets' scripts send it
  /// (input() then sendall).
  private func noNewline(_ program: CheckedProgram) -> CheckResult {
    if programSpeaksFirst {
      guard typeArrives(program, "à toi") else {
        return notArrived(.noNewline, program, question: words.question(3))
      }
    } else {
      program.pump(for: settle)
    }
    let message = "message sans fin de ligne"
    let offset = program.output.count
    program.send(Array(message.utf8))
    if program.pump(for: prompt, until: { $0.shows(Array(message.utf8), since: offset) }) {
      return pass(
        .noNewline,
        words.t("a message without a newline was shown", "un message sans fin de ligne a été affiché"))
    }
    return fail(
      .noNewline,
      words.t(
        "a message without a newline (as input() and sendall send it) was not shown within \(Int(prompt)) s",
        "un message sans fin de ligne (comme l'envoient input() et sendall) n'a pas été affiché en \(Int(prompt)) s"
      )
        + words.state(program),
      cause: words.t(
        "it reads the socket line by line (readline, makefile) and waits for a newline that never comes: print what recv() returns",
        "il lit la socket ligne par ligne (readline, makefile) et attend une fin de ligne qui ne vient pas : affichez ce que renvoie recv()"
      ),
      question: words.question(1))
  }

  /// 64 KiB from forkchat, 1024 numbered lines of 64 bytes, all shown in
  /// order (the program may put its own words between the pieces it
  /// receives: "[Serveur] ").
  private func largeMessage(_ program: CheckedProgram) -> CheckResult {
    let question = words.question(alternate ? 3 : 1)
    if programSpeaksFirst {
      guard typeArrives(program, "à toi") else {
        return notArrived(.largeMessage, program, question: question)
      }
    } else {
      program.pump(for: settle)
    }
    var message: [UInt8] = []
    for number in 1...1024 {
      var line = Array("ligne \(number) ".utf8)
      line += [UInt8](repeating: UInt8(ascii: "a") + UInt8(number % 26), count: 63 - line.count)
      message += line + [UInt8(ascii: "\n")]
    }
    let wanted = message.filter { $0 != UInt8(ascii: "\n") }
    var matched = 0
    var scanned = program.output.count
    program.send(message)
    program.pump(for: 5) { program in
      let output = program.output
      while scanned < output.count && matched < wanted.count {
        if output[scanned] == wanted[matched] { matched += 1 }
        scanned += 1
      }
      return matched == wanted.count
    }
    if matched == wanted.count {
      return pass(
        .largeMessage,
        words.t("a message of 64 KiB was shown whole", "un message de 64 Kio a été affiché en entier"))
    }
    return fail(
      .largeMessage,
      words.t(
        "of a message of 64 KiB (65536 bytes), only about \(matched + matched / 63) bytes were shown within 5 s",
        "d'un message de 64 Kio (65536 octets), seuls \(matched + matched / 63) octets environ ont été affichés en 5 s"
      )
        + words.state(program),
      cause: words.t(
        "it reads the socket once per message (one recv(1024)): a large message comes in many pieces; call recv in a loop",
        "il lit la socket une fois par message (un seul recv(1024)) : un gros message arrive en plusieurs morceaux ; appelez recv en boucle"
      ),
      question: question)
  }
}
