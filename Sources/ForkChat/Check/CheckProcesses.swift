import CForkChat
import Glibc

// forkchat check: what the kernel says of the student's processes, read in
// /proc (proc(5)), and the bound on how many it may have.

/// One line of /proc/PID/stat: the fields forkchat check needs.
struct ProcessEntry: Equatable {
  let pid: pid_t
  /// R running, S sleeping, Z zombie (ended, not yet waited for), ...
  let state: UInt8
  let parent: pid_t
  let group: pid_t
  let session: pid_t

  var isZombie: Bool { state == UInt8(ascii: "Z") }
}

/// The whole contents of a small file, or nil if it cannot be read.
func readSmallFile(_ path: String) -> [UInt8]? {
  let descriptor = open(path, O_RDONLY | O_CLOEXEC)
  guard descriptor >= 0 else { return nil }
  let file = FileDescriptor(rawValue: descriptor)
  defer { file.closeIgnoringErrors() }
  var contents: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 4096)
  while true {
    let count = chunk.withUnsafeMutableBytes { buffer in (try? file.read(into: buffer)) ?? -1 }
    guard count > 0 else { return count == 0 ? contents : nil }
    contents += chunk[..<count]
  }
}

/// Writes `text` to a file that exists (a cgroup's control file).
func writeSmallFile(_ path: String, _ text: String) -> Bool {
  let descriptor = open(path, O_WRONLY | O_CLOEXEC)
  guard descriptor >= 0 else { return false }
  let file = FileDescriptor(rawValue: descriptor)
  defer { file.closeIgnoringErrors() }
  return (try? file.writeAll(Array(text.utf8))) != nil
}

/// /proc/PID/stat, or nil if the process is gone. The command name, in
/// parentheses, may hold spaces and parentheses: the fields are read
/// after its last ')'.
func processEntry(_ pid: pid_t) -> ProcessEntry? {
  guard let text = readSmallFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: UInt8(ascii: ")"))
  else {
    return nil
  }
  let fields = text[(close + 1)...].split(separator: UInt8(ascii: " "))
  guard fields.count > 4, let state = fields[0].first,
    let parent = pid_t(String(decoding: fields[1], as: UTF8.self)),
    let group = pid_t(String(decoding: fields[2], as: UTF8.self)),
    let session = pid_t(String(decoding: fields[3], as: UTF8.self))
  else { return nil }
  return ProcessEntry(pid: pid, state: state, parent: parent, group: group, session: session)
}

/// Every process of the machine, as /proc lists them now.
func allProcesses() -> [ProcessEntry] {
  guard let directory = opendir("/proc") else { return [] }
  defer { closedir(directory) }
  var entries: [ProcessEntry] = []
  while let item = readdir(directory) {
    let name = withUnsafePointer(to: &item.pointee.d_name) {
      String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
    }
    if let pid = pid_t(name), let entry = processEntry(pid) { entries.append(entry) }
  }
  return entries
}

/// The processes started from the program: those of its process group
/// (numbered by its pid), of the session its leader made, and of the
/// process bound's cgroup (one that called setsid itself), the leader
/// aside.
func processesOfProgram(_ pid: pid_t, leader: pid_t, bound: ProcessBound) -> [ProcessEntry] {
  let inCgroup = Set(bound.members())
  return allProcesses().filter {
    $0.pid != leader && ($0.session == leader || $0.group == pid || inCgroup.contains($0.pid))
  }
}

/// The command line of a process, its arguments joined by spaces
/// ("python3 client.py"), for a message.
func commandLine(of pid: pid_t) -> String {
  guard let bytes = readSmallFile("/proc/\(pid)/cmdline"), !bytes.isEmpty else { return "?" }
  return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
}

/// The bound on the student's processes, so that a fork bomb cannot take
/// the machine. As root, a pids cgroup (v1 or v2) holding at most
/// `ProcessBound.limit` tasks: RLIMIT_NPROC does not bind root (setrlimit(2):
/// CAP_SYS_RESOURCE and CAP_SYS_ADMIN pass it), and a cgroup counts every
/// process, wherever it goes, and lets them all be found and killed.
/// Otherwise RLIMIT_NPROC, set in the child before exec: the user's tasks
/// now plus the limit (it counts every task of the real user id).
struct ProcessBound {
  /// Processes and threads the program may have at once.
  static let limit = 64

  enum Kind: Equatable {
    /// The directory of a pids cgroup made for this check.
    case cgroup(String)
    /// The RLIMIT_NPROC to set in the child.
    case processLimit(rlim_t)
    case none
  }

  let kind: Kind

  /// "a pids cgroup (64 tasks)" or "RLIMIT_NPROC": said by --json.
  var description: String {
    switch kind {
    case .cgroup(let path): "cgroup \(path), pids.max \(Self.limit)"
    case .processLimit(let value): "RLIMIT_NPROC \(value)"
    case .none: "none"
    }
  }

  /// Makes the bound: a cgroup as root where one can be made, else the
  /// process limit.
  static func make() -> ProcessBound {
    if geteuid() == 0 {
      let name = "forkchat-check-\(getpid())"
      var candidates = ["/sys/fs/cgroup/pids"]
      // cgroup v2: a child of our own cgroup ("0::/path" in /proc/self/cgroup).
      if let text = readSmallFile("/proc/self/cgroup") {
        for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("0::".utf8)) {
          candidates.append("/sys/fs/cgroup" + String(decoding: line.dropFirst(3), as: UTF8.self))
        }
      }
      for base in candidates {
        let path = base.hasSuffix("/") ? base + name : base + "/" + name
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { continue }
        if writeSmallFile(path + "/pids.max", "\(limit)") { return ProcessBound(kind: .cgroup(path)) }
        rmdir(path)
      }
    }
    var current = rlimit()
    getrlimit(processLimitResource, &current)
    let wanted = rlim_t(tasksOfUser(getuid()) + limit)
    if current.rlim_cur != rlim_t.max && current.rlim_cur < wanted { return ProcessBound(kind: .none) }
    return ProcessBound(kind: .processLimit(wanted))
  }

  /// In the child, before exec (async-signal-safe calls only: setrlimit).
  func applyInChild() {
    if case .processLimit(let value) = kind {
      var limit = rlimit(rlim_cur: value, rlim_max: value)
      setrlimit(processLimitResource, &limit)
    }
  }

  /// In the parent, before the child may exec: puts it in the cgroup.
  func admit(_ pid: pid_t) {
    if case .cgroup(let path) = kind { _ = writeSmallFile(path + "/cgroup.procs", "\(pid)") }
  }

  /// The processes in the cgroup now.
  func members() -> [pid_t] {
    guard case .cgroup(let path) = kind, let text = readSmallFile(path + "/cgroup.procs") else { return [] }
    return text.split(separator: UInt8(ascii: "\n")).compactMap { pid_t(String(decoding: $0, as: UTF8.self)) }
  }

  /// How many times a fork was refused because the limit was reached
  /// (pids.events: "max N"), 0 without a cgroup.
  func refusedForks() -> Int {
    guard case .cgroup(let path) = kind, let text = readSmallFile(path + "/pids.events") else { return 0 }
    let words = text.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
    guard let index = words.firstIndex(where: { $0.elementsEqual("max".utf8) }), index + 1 < words.count
    else {
      return 0
    }
    return Int(String(decoding: words[index + 1], as: UTF8.self)) ?? 0
  }

  /// Removes the cgroup (it must be empty).
  func remove() {
    if case .cgroup(let path) = kind { rmdir(path) }
  }
}

/// The tasks (threads) that the user `uid` runs now: what RLIMIT_NPROC counts.
private func tasksOfUser(_ uid: uid_t) -> Int {
  guard let directory = opendir("/proc") else { return 0 }
  defer { closedir(directory) }
  var count = 0
  while let item = readdir(directory) {
    let name = withUnsafePointer(to: &item.pointee.d_name) {
      String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
    }
    guard pid_t(name) != nil else { continue }
    var status = stat()
    guard stat("/proc/\(name)", &status) == 0, status.st_uid == uid else { continue }
    // Field 20 of /proc/PID/stat: the number of threads.
    if let text = readSmallFile("/proc/\(name)/stat"), let close = text.lastIndex(of: UInt8(ascii: ")")) {
      let fields = text[(close + 1)...].split(separator: UInt8(ascii: " "))
      count += fields.count > 17 ? Int(String(decoding: fields[17], as: UTF8.self)) ?? 1 : 1
    }
  }
  return count
}

/// RLIMIT_NPROC, as Glibc's module imports it (an enum case).
private let processLimitResource = __rlimit_resource_t(__RLIMIT_NPROC.rawValue)
