import Glibc

// The limits on a process's resources (getrlimit(2)): the room raises its
// limit on open descriptors to hold one per client.

/// The limits on `resource` (RLIMIT_NOFILE: open descriptors).
///
/// The corresponding C function is `getrlimit`.
func resourceLimit(_ resource: __rlimit_resource) throws(Errno) -> (soft: UInt, hard: UInt) {
  var limit = rlimit()
  try nothingOrErrno { getrlimit(__rlimit_resource_t(resource.rawValue), &limit) }
  return (UInt(limit.rlim_cur), UInt(limit.rlim_max))
}

/// Sets the limits on `resource`.
///
/// The corresponding C function is `setrlimit`.
func setResourceLimit(_ resource: __rlimit_resource, soft: UInt, hard: UInt) throws(Errno) {
  var limit = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
  try nothingOrErrno { setrlimit(__rlimit_resource_t(resource.rawValue), &limit) }
}

/// This process's limits on open descriptors.
func openFileLimit() -> (soft: UInt, hard: UInt) {
  (try? resourceLimit(RLIMIT_NOFILE)) ?? (1024, 1024)
}

/// Raises the soft limit on open descriptors towards the hard limit, so
/// that the hub can hold `wanted` of them. Returns the limit in force.
func raiseOpenFileLimit(to wanted: UInt) -> UInt {
  let (soft, hard) = openFileLimit()
  guard soft < wanted else { return soft }
  let raised = min(wanted, hard)
  guard (try? setResourceLimit(RLIMIT_NOFILE, soft: raised, hard: hard)) != nil else { return soft }
  return raised
}
