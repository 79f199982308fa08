#define _GNU_SOURCE
#include "CForkChat.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int forkchat_set_parent_death_signal(int signal) {
  return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}

int forkchat_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
  return accept4(fd, address, length, flags);
}

int forkchat_pipe2(int fds[2], int flags) {
  return pipe2(fds, flags);
}

long forkchat_splice(int in, int out, unsigned long length) {
  return (long)splice(in, NULL, out, NULL, length, SPLICE_F_MOVE);
}

int forkchat_gettid(void) {
  return (int)syscall(SYS_gettid);
}

int forkchat_close_range(unsigned int first, unsigned int last) {
  return (int)syscall(SYS_close_range, first, last, 0);
}
