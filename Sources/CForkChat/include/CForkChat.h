#ifndef CFORKCHAT_H
#define CFORKCHAT_H

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>

/* The few Linux calls that Glibc's Swift module does not import: prctl is
   variadic, and accept4 and pipe2 are declared only under _GNU_SOURCE.
   Each returns what the C call returns (-1 with errno set on failure). */

/* The wait status macros of waitpid(2), which Swift does not import
   (function-like macros): how a child ended. */
static inline int forkchat_wifexited(int status) { return WIFEXITED(status); }
static inline int forkchat_wexitstatus(int status) { return WEXITSTATUS(status); }
static inline int forkchat_wtermsig(int status) { return WTERMSIG(status); }

/* The self-pipe's signal handler (Process/Signals.swift). It is C, not
   Swift, so that it is the same few instructions in every build: it saves
   errno, writes the signal's number as one byte into the pipe, restores
   errno, and nothing else (signal-safety(7): write(2) is async-signal-safe;
   a Swift function is not, the debug build's exclusivity checks call the
   runtime). `forkchat_set_signal_pipe` sets the descriptor it writes to (-1:
   none) while the handled signals are blocked; `forkchat_handle_signal`
   installs the handler for one signal with sigaction(2), without
   SA_RESTART (a blocked read or write returns EINTR) and with SA_NOCLDSTOP.
   Returns what sigaction returns. */
void forkchat_set_signal_pipe(int fd);
int forkchat_handle_signal(int signal);

/* Whether the handler has run since `forkchat_clear_signal_arrived`: read
   without a system call, by a loop that blocks in splice(2) rather than in
   poll(2) while bulk data flows (Session/Copying.swift). The program clears
   it before it reads the pipe, so a signal is never in the pipe unseen. */
int forkchat_signal_arrived(void);
void forkchat_clear_signal_arrived(void);

/* Whether `signal` was ignored (SIG_IGN) when the program started, before
   main: by nohup, by `trap '' HUP`, or by a non-interactive shell for the
   SIGINT and SIGQUIT of a job it starts with `&`. Such a signal stays
   ignored (the convention of nc, socat and every daemon). Read by a
   constructor of the executable, before Swift's main ignores SIGPIPE; for
   the standard signals (1 to 31), 0 for any other. */
int forkchat_ignored_at_start(int signal);

/* In a child that shares the terminal with its parent (the fork session):
   when the parent dies, whatever killed it, SIGKILL included, the kernel
   sends this process SIGUSR1 (prctl PR_SET_PDEATHSIG), whose handler
   discards pending input (tcflush), puts back `modes` on the terminal
   `terminal` (tcsetattr), writes `length` bytes of `reset` to `output` (-1:
   none; the scroll region given back), and ends with _exit(`status`): all
   async-signal-safe calls. The parent cannot give the terminal back once
   it is killed; this process, which outlives it for a moment, can.
   Returns what prctl returns. */
int forkchat_restore_terminal_when_parent_dies(int terminal, const struct termios *modes, int output,
                                               const char *reset, unsigned long length, int status);

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

/* forkchat check: prctl(PR_SET_CHILD_SUBREAPER, 1): the orphans of the
   processes this one starts are reparented to it instead of init, so that
   it can find them and reap them (prctl(2)). */
int forkchat_set_child_subreaper(void);

/* forkchat check: the pseudo-terminal pair of openpty(3) (in libutil,
   which Glibc's module does not import), both close-on-exec, the
   terminal 80 columns by 24 rows. Returns 0, or -1 with errno set. */
int forkchat_open_terminal(int *controller, int *terminal);

/* forkchat check: ioctl(fd, TIOCSCTTY, 0): the terminal `fd` becomes the
   controlling terminal of the calling session leader (ioctl is variadic).
   Returns 0, or -1 with errno set. */
int forkchat_set_controlling_terminal(int fd);

/* _Fork(): fork(2) without glibc's fork handlers and locks, for the chat's
   fork (Fork.c says why). Returns what fork() returns. */
int forkchat_fork(void);

/* clone(SIGCHLD): fork(2) without glibc's wrapper and its lock writes, for
   the room's readers only (Fork.c says why). Returns the child's pid in
   the parent, 0 in the child, -1 with errno set on failure. */
int forkchat_fork_system_call(void);

/* rseq(2) RSEQ_FLAG_UNREGISTER for the calling thread, for the room's
   spawner (Fork.c says why). Returns 0 (also when glibc registered
   nothing), or -1 with errno set. */
int forkchat_unregister_rseq(void);

#endif
