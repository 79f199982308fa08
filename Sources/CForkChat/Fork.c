/* How forkchat forks: the chat's processes by _Fork(), the room's readers by
   the fork system call itself, after their spawner has unregistered its
   rseq area. */
#define _GNU_SOURCE
#include "CForkChat.h"

#include <errno.h>
#include <signal.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The chat's fork is _Fork() (POSIX.1-2024, glibc 2.34): the system call,
   and in the child the one fix-up every process needs (its robust-mutex
   list registered again), without what glibc's fork() adds around it for
   the sake of other threads: the atfork handlers (forkchat registers
   none), and stdio's, malloc's and NSS's locks, taken before the call and
   released or reset after it in both processes. That code lies partly
   outside the text the order file groups (Makefile), and the locks are
   pages of glibc's data: 4 page faults more for the two processes, and
   0.04 to 0.09 ms more from start to exit (docs/package.md). A process with
   one thread holds none of those locks, and forkChild (ChildProcess.swift)
   is called only then. An older glibc (Ubuntu 20.04 has 2.31) has no
   _Fork: fork() there. */
int forkchat_fork(void) {
#if __GLIBC_PREREQ(2, 34)
  return _Fork();
#else
  return fork();
#endif
}

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

/* Restartable sequences (rseq(2)): since 2.35 glibc registers, for every
   thread, an area in the thread's own control block (struct pthread, the
   first page of the heap in a static program) where the kernel writes the
   number of the CPU the thread runs on each time it comes back to user
   space after being scheduled or moved. fork(2) keeps the registration: so
   the kernel itself would write that page in every reader the first time
   it runs, and the reader would own a copy of it (4 KiB, docs/room.md).
   glibc only reads the area to answer sched_getcpu(3) quickly, and falls
   back to the system call when the kernel has marked it unregistered; the
   room uses neither. The spawner unregisters before its first fork, so
   its readers are forked without it. The length must be the one glibc
   registered: 32 bytes (sizeof struct rseq) in glibc 2.35 to 2.39, where
   __rseq_size is 32 too; later versions register at least 32 and may
   publish a smaller __rseq_size, so both are tried. */
int forkchat_unregister_rseq(void) {
  if (__rseq_size == 0) return 0; /* glibc.pthread.rseq=0, or an old kernel */
  void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
  if (syscall(SYS_rseq, area, 32U, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0) return 0;
  if (errno != EINVAL || __rseq_size == 32) return -1;
  return (int)syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
}
