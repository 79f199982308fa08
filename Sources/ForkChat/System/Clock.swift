import Glibc

// Time as forkchat measures it: the monotonic clock for deadlines and
// poll(2) timeouts, and seconds written back as the user wrote them.

/// Seconds as the user wrote them: "2", "0.5".
public func formatSeconds(_ seconds: Double) -> String {
  // "\(Int(seconds))": System/Decimal.swift's digits.
  seconds == seconds.rounded() && seconds < 1e15 ? "\(Int(seconds))" : String(seconds)
}

/// The monotonic clock (CLOCK_MONOTONIC), in seconds: never jumps when the
/// wall clock is set.
public enum Clock {
  public static var now: Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
  }

  /// The timeout poll(2) takes to wait until `deadline` (a `now`), in ms,
  /// rounded up so that the wait never ends early: 0 once it has passed,
  /// -1 (no limit) without one.
  public static func pollTimeout(until deadline: Double?) -> CInt {
    guard let deadline else { return -1 }
    return CInt(min(max(0, (deadline - now) * 1000).rounded(.up), Double(CInt.max)))
  }

  /// Sleeps, going back to sleep for the rest of the time after a signal.
  public static func sleep(seconds: Double) {
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
  }
}
