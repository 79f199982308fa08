#define _GNU_SOURCE
#include "CForkChat.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The room's readers are forked by the fork system call itself, not by
   glibc's fork(): glibc's wrapper takes and releases its own locks around
   the call (stdio's list, malloc's arena, the loader's and NSS's) in the
   parent and resets them in the child, and each of those writes is one page
   of glibc's data that the child then owns a copy of: four pages, 16 KiB,
   in every reader (docs/room.md). The room's spawner is single-threaded and
   holds none of those locks, and its readers never start a thread, never
   use stdio and never call atfork handlers, so there is nothing for the
   wrapper to do. clone(2) with SIGCHLD and no other flag is fork(2) (the
   only form every Linux architecture has: arm64 has no fork system call). */
int forkchat_fork_system_call(void) {
  return (int)syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
}
