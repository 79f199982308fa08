#ifndef CFORKCHAT_H
#define CFORKCHAT_H

#include <sys/socket.h>
#include <sys/wait.h>

/* The few Linux calls that Glibc's Swift module does not import: prctl is
   variadic, and accept4 and pipe2 are declared only under _GNU_SOURCE.
   Each returns what the C call returns (-1 with errno set on failure). */

/* The wait status macros of waitpid(2), which Swift does not import
   (function-like macros): how a child ended. */
static inline int forkchat_wifexited(int status) { return WIFEXITED(status); }
static inline int forkchat_wexitstatus(int status) { return WEXITSTATUS(status); }
static inline int forkchat_wifsignaled(int status) { return WIFSIGNALED(status); }
static inline int forkchat_wtermsig(int status) { return WTERMSIG(status); }

/* prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process
   when its parent dies. */
int forkchat_set_parent_death_signal(int signal);

/* accept4(fd, address, length, flags). */
int forkchat_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/* pipe2(fds, flags). */
int forkchat_pipe2(int fds[2], int flags);

/* splice(in, NULL, out, NULL, length, SPLICE_F_MOVE): moves
   up to `length` bytes between two descriptors, one of them a pipe, inside
   the kernel. Returns the bytes moved, 0 at end of input. */
long forkchat_splice(int in, int out, unsigned long length);

/* gettid(): the kernel's id of the calling thread (equal to the pid in a
   process's first thread). */
int forkchat_gettid(void);

/* close_range(first, last, 0): closes every open descriptor from `first` to
   `last` (Linux 5.9; fails with ENOSYS before). */
int forkchat_close_range(unsigned int first, unsigned int last);

/* sendmsg(socket, ...) of `length` bytes of `data` with one descriptor
   attached (SCM_RIGHTS, unix(7)): the receiving process gets its own
   descriptor for the same open file. Swift does not import the CMSG_*
   macros that build the control message. Returns the bytes sent. */
long forkchat_send_descriptor(int socket, int descriptor, const void *data, unsigned long length, int flags);

/* recvmsg(socket, ...) into `data`; the descriptor that came with the
   message (close-on-exec, MSG_CMSG_CLOEXEC) is stored in `*descriptor`, or
   -1 if none did. Returns the bytes received, 0 at end of file. */
long forkchat_receive_descriptor(int socket, int *descriptor, void *data, unsigned long length);

/* ioctl(fd, TIOCGWINSZ): the terminal's size in rows and columns (ioctl is
   variadic, so Swift does not import it). Returns 0, or -1 with errno set. */
int forkchat_window_size(int fd, unsigned short *rows, unsigned short *columns);

/* The program's arguments, as the C library passed them to the
   constructors of the executable (argc, argv): Swift's CommandLine reads
   /proc/self/... to find them in a static executable, which fails when no
   descriptor is left (a descriptor limit of 3). */
int forkchat_argument_count(void);
char *const *forkchat_arguments(void);

/* clone(SIGCHLD): fork(2) without glibc's wrapper and its lock writes, for
   the room's readers only (RoomFork.c says why). Returns the child's pid in
   the parent, 0 in the child, -1 with errno set on failure. */
int forkchat_fork_system_call(void);

#endif
