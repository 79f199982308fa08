/* The ceiling of a relay between standard streams and a TCP socket.

   A two-party chat with forkchat's shape, one process per direction after
   fork(), that moves the bytes with splice(2) only: the kernel moves pages
   between the pipe or file, a pipe and the socket, and no byte is copied
   through user space. No relay that reads into a buffer and writes it out
   can be faster on the same plumbing; make bench gives forkchat's speed as
   a fraction of this one's (Tests/bench/bench.py, which compiles this file
   with cc or the Swift toolchain's clang).

   In C, not Python: the ceiling must not pay an interpreter's start (80 ms
   on the bench machine, a third of a 256 MiB transfer's time).

   splice(2) needs a pipe on one side: where neither descriptor is a pipe (a
   file into the socket, the socket into a file or /dev/null), the bytes go
   through a pipe of our own, 1 MiB, still without a copy. A terminal takes
   splice(2) on Linux since 5.10 (the tty has write_iter); where the kernel
   refuses it (EINVAL: a file opened O_APPEND, an older kernel's terminal)
   the relay falls back to read(2) and write(2) of 64 KiB.

   Usage: splice_relay listen PORT | splice_relay connect PORT
   (127.0.0.1 only; sends FIN at the end of its input, exits at the
   peer's). */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK (1 << 20)
/* Not SPLICE_F_MORE: it tells TCP that more is coming, and TCP then holds a
   last partial segment back until more comes or FIN: a relay whose peer
   waits for those bytes before it closes its own side never sends them
   (the full duplex bulk test hangs). forkchat passes SPLICE_F_MOVE alone. */
#define FLAGS SPLICE_F_MOVE

static int is_pipe(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* read(2) and write(2), for what splice(2) refuses. */
static int copy(int source, int target) {
  static char buffer[64 * 1024];
  for (;;) {
    ssize_t got = read(source, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return (int)got;
    for (ssize_t done = 0; done < got;) {
      ssize_t put = write(target, buffer + done, (size_t)(got - done));
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) return -1;
      done += put;
    }
  }
}

/* Moves everything from source to target until end of input; -1 and
   errno on failure. */
static int move(int source, int target) {
  int ends[2] = {-1, -1};
  if (!is_pipe(source) && !is_pipe(target)) {
    if (pipe2(ends, O_CLOEXEC) < 0) return -1;
    (void)fcntl(ends[1], F_SETPIPE_SZ, CHUNK); /* over pipe-max-size: 64 KiB will do */
  }
  for (;;) {
    ssize_t moved;
    if (ends[0] < 0) {
      moved = splice(source, NULL, target, NULL, CHUNK, FLAGS);
      if (moved < 0 && errno == EINTR) continue;
      if (moved < 0 && errno == EINVAL) return copy(source, target);
      if (moved <= 0) return (int)moved;
      continue;
    }
    moved = splice(source, NULL, ends[1], NULL, CHUNK, FLAGS);
    if (moved < 0 && errno == EINTR) continue;
    if (moved < 0 && errno == EINVAL) return copy(source, target);
    if (moved <= 0) return (int)moved;
    while (moved > 0) {
      ssize_t out = splice(ends[0], NULL, target, NULL, (size_t)moved, FLAGS);
      if (out < 0 && errno == EINTR) continue;
      if (out < 0 && errno == EINVAL) {
        /* The target refuses splice: what our pipe holds, then the rest. */
        static char buffer[64 * 1024];
        while (moved > 0) {
          ssize_t got = read(ends[0], buffer, sizeof buffer < (size_t)moved ? sizeof buffer : (size_t)moved);
          if (got <= 0) return -1;
          for (ssize_t done = 0; done < got;) {
            ssize_t put = write(target, buffer + done, (size_t)(got - done));
            if (put < 0 && errno == EINTR) continue;
            if (put < 0) return -1;
            done += put;
          }
          moved -= got;
        }
        return copy(source, target);
      }
      if (out <= 0) return -1;
      moved -= out;
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: splice_relay listen|connect PORT\n");
    return 64;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd;
  if (strcmp(argv[1], "listen") == 0) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 1) < 0) {
      perror("splice_relay: listen");
      return 1;
    }
    fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    close(listener);
  } else {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) fd = -1;
  }
  if (fd < 0) {
    perror("splice_relay: connect");
    return 1;
  }
  /* As forkchat: no Nagle delay (tcp(7)), which holds a last small segment
     back until the ones before it are acknowledged. */
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  pid_t pid = fork();
  if (pid == 0) {
    /* The child: standard input to the socket, then FIN. */
    int code = 0;
    if (move(0, fd) < 0 || shutdown(fd, SHUT_WR) < 0) {
      perror("splice_relay: send");
      code = 1;
    }
    _exit(code);
  }
  /* The parent: the socket to standard output, then wait for the child. */
  int code = 0;
  if (move(fd, 1) < 0) {
    perror("splice_relay: receive");
    code = 1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return code ? code : (WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}
