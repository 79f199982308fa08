#define _GNU_SOURCE
#include "CForkChat.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int saved_argument_count;
/* Bit N: signal N was ignored at start. */
static unsigned long long ignored_at_start;
static char *const *saved_arguments;

/* The main thread's stack grows on demand, one page fault at a time, and
   under a tight RLIMIT_AS a growth that does not fit is a SIGSEGV, with no
   message, wherever the program is (in the middle of a chat, say, once a
   thread's stack has taken the rest). Reading the lowest byte of a large
   stack array (alloca), at the stack pointer, grows the stack mapping down
   to it once and for all, by more than forkchat ever uses: one page fault,
   which maps the shared zero page there and costs address space, not
   memory. The pages in between are faulted in as they are used, each once,
   inside a mapping that no longer has to grow. (Reading every page of the
   array, as this did before, cost 64 faults at every start, and a second
   one for each page then written.) If even that does not fit, the program
   stops here, before it has done anything. */
static void grow_stack(void) {
  long size = 256 * 1024;
  __asm__("" : "+r"(size)); /* an opaque size: the compiler may not shrink the array */
  volatile unsigned char *reserve = __builtin_alloca(size);
  (void)reserve[0];
}

/* glibc calls the functions of .init_array with (argc, argv, envp), in a
   static executable too, before main. */
static void save_arguments(int count, char **arguments, char **environment) {
  (void)environment;
  saved_argument_count = count;
  saved_arguments = arguments;
  /* The standard signals only (1 to 31): forkchat handles no real-time
     one, and each is a system call at every start. */
  for (int signal = 1; signal < 32; signal++) {
    struct sigaction action;
    if (sigaction(signal, NULL, &action) == 0 && action.sa_handler == SIG_IGN) {
      ignored_at_start |= 1ULL << signal;
    }
  }
  grow_stack();
  /* One malloc arena for all threads: a new thread's first malloc would
     otherwise reserve 64 MiB of address space for an arena of its own, and
     under a tight RLIMIT_AS the threads mode's sender thread met a NULL
     from malloc in its first steps. forkchat has one thread besides the
     main one, at most: nothing to gain from more arenas. */
  mallopt(M_ARENA_MAX, 1);
}

__attribute__((section(".init_array"), used)) static void (*const save_arguments_entry)(int, char **, char **) =
    save_arguments;

int forkchat_argument_count(void) {
  return saved_argument_count;
}

char *const *forkchat_arguments(void) {
  return saved_arguments;
}

int forkchat_ignored_at_start(int signal) {
  return signal > 0 && signal < 32 && (ignored_at_start >> signal) & 1;
}

/* The write end of the self-pipe; volatile sig_atomic_t, the one type a
   handler may read while the program writes it (C11 7.14.1.1). */
static volatile sig_atomic_t signal_pipe = -1;
/* Set by the handler, cleared by the program before it reads the pipe: a
   loop that blocks in splice(2) instead of poll(2) looks here first. */
static volatile sig_atomic_t signal_arrived = 0;

static void forward_signal(int signal) {
  int saved = errno; /* write(2) may change errno under the interrupted code */
  unsigned char byte = (unsigned char)signal;
  signal_arrived = 1;
  (void)write(signal_pipe, &byte, 1); /* non-blocking: a full pipe drops the byte */
  errno = saved;
}

void forkchat_set_signal_pipe(int fd) {
  signal_pipe = fd;
}

int forkchat_signal_arrived(void) {
  return signal_arrived;
}

void forkchat_clear_signal_arrived(void) {
  signal_arrived = 0;
}

int forkchat_handle_signal(int signal) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_NOCLDSTOP;
  return sigaction(signal, &action, NULL);
}

/* What the handler of the parent's death needs, copied here (it may read
   only what does not change under it). */
static struct termios restore_modes;
static int restore_terminal = -1;
static int restore_output = -1;
static char restore_bytes[64];
static unsigned long restore_length;
static int restore_status;

static void restore_terminal_and_exit(int signal) {
  (void)signal;
  tcflush(restore_terminal, TCIFLUSH);
  tcsetattr(restore_terminal, TCSANOW, &restore_modes);
  if (restore_output >= 0) {
    for (unsigned long written = 0; written < restore_length;) {
      ssize_t count = write(restore_output, restore_bytes + written, restore_length - written);
      if (count <= 0 && errno != EINTR) break;
      if (count > 0) written += (unsigned long)count;
    }
  }
  _exit(restore_status);
}

int forkchat_restore_terminal_when_parent_dies(int terminal, const struct termios *modes, int output,
                                               const char *reset, unsigned long length, int status) {
  restore_modes = *modes;
  restore_terminal = terminal;
  restore_output = output;
  restore_length = length < sizeof restore_bytes ? length : sizeof restore_bytes;
  memcpy(restore_bytes, reset, restore_length);
  restore_status = status;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = restore_terminal_and_exit;
  sigfillset(&action.sa_mask); /* nothing else runs in the middle of it */
  if (sigaction(SIGUSR1, &action, NULL) != 0) return -1;
  return prctl(PR_SET_PDEATHSIG, (unsigned long)SIGUSR1, 0UL, 0UL, 0UL);
}

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

/* Descriptor passing follows W. R. Stevens' UNP (write_fd.c and read_fd.c,
   section 15.7): one iovec of data, and a control buffer in a union with a
   struct cmsghdr so that it is aligned as CMSG_FIRSTHDR expects. */

long forkchat_send_descriptor(int socket, int descriptor, const void *data, unsigned long length, int flags) {
  struct iovec part = {(void *)data, length};
  union {
    char bytes[CMSG_SPACE(sizeof(int))];
    struct cmsghdr alignment;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr message = {0};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control.bytes;
  message.msg_controllen = sizeof control.bytes;
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
  return (long)sendmsg(socket, &message, flags);
}

long forkchat_receive_descriptor(int socket, int *descriptor, void *data, unsigned long length) {
  struct iovec part = {data, length};
  union {
    char bytes[CMSG_SPACE(4 * sizeof(int))];
    struct cmsghdr alignment;
  } control;
  struct msghdr message = {0};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control.bytes;
  message.msg_controllen = sizeof control.bytes;
  *descriptor = -1;
  ssize_t received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  if (received < 0) return -1;
  for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL;
       header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t index = 0; index < count; index++) {
      int received_descriptor;
      memcpy(&received_descriptor, CMSG_DATA(header) + index * sizeof(int), sizeof(int));
      if (*descriptor == -1) {
        *descriptor = received_descriptor;
      } else {
        close(received_descriptor); /* one descriptor per message: more is a bug */
      }
    }
  }
  return (long)received;
}

int forkchat_window_size(int fd, unsigned short *rows, unsigned short *columns) {
  struct winsize size;
  if (ioctl(fd, TIOCGWINSZ, &size) == -1) return -1;
  *rows = size.ws_row;
  *columns = size.ws_col;
  return 0;
}

/* forkchat check (Sources/ForkChat/Check/). */
#include <errno.h>
#include <stdlib.h>

int forkchat_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int forkchat_open_terminal(int *controller, int *terminal) {
  int main_side = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (main_side == -1) return -1;
  char name[128];
  if (grantpt(main_side) == -1 || unlockpt(main_side) == -1 || ptsname_r(main_side, name, sizeof name) != 0) {
    int saved = errno;
    close(main_side);
    errno = saved;
    return -1;
  }
  /* O_NOCTTY: the terminal does not become the controlling terminal of
     anyone here; the student's program gets it as its descriptors 0 and 1. */
  int other_side = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (other_side == -1) {
    int saved = errno;
    close(main_side);
    errno = saved;
    return -1;
  }
  struct winsize size = {.ws_row = 24, .ws_col = 80};
  ioctl(other_side, TIOCSWINSZ, &size);
  *controller = main_side;
  *terminal = other_side;
  return 0;
}

int forkchat_set_controlling_terminal(int fd) { return ioctl(fd, TIOCSCTTY, 0); }
