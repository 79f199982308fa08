/* What the machine charges for the things a start does many times
   (docs/package.md, "Start to exit, step by step"): one CPUID instruction
   (glibc's start runs 43 of them, to learn the CPU's features and caches),
   one read fault on a file mapping (the kernel maps up to 16 pages around
   it), one page mapped by MADV_POPULATE_READ, one write fault on fresh
   anonymous memory. Medians of 5 rounds, in microseconds.

   Usage: machine_costs FILE   (FILE: at least 6 MiB, e.g. the forkchat binary) */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

enum { ROUNDS = 5, LENGTH = 6 << 20, WINDOW = 64 << 10, PAGES = 400 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v) {
  qsort(v, ROUNDS, sizeof *v, by_value);
  return v[ROUNDS / 2];
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: machine_costs FILE\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  double cpuid[ROUNDS], fault[ROUNDS], populate[ROUNDS], anon[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    unsigned a, b, c, d;
    double t = now();
    for (int i = 0; i < 1000; i++) __cpuid_count(0x80000006, 0, a, b, c, d);
    cpuid[r] = (now() - t) / 1000;

    volatile char *p = mmap(NULL, LENGTH, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return perror("mmap"), 1;
    char sum = 0;
    t = now();
    for (long o = 0; o < LENGTH; o += WINDOW) sum += p[o];
    fault[r] = (now() - t) / (LENGTH / WINDOW);
    munmap((void *)p, LENGTH);

    void *q = mmap(NULL, LENGTH, PROT_READ, MAP_PRIVATE, fd, 0);
    if (q == MAP_FAILED) return perror("mmap"), 1;
    t = now();
    if (madvise(q, LENGTH, MADV_POPULATE_READ) != 0) return perror("madvise"), 1;
    populate[r] = (now() - t) / (LENGTH / 4096);
    munmap(q, LENGTH);

    volatile char *w = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED) return perror("mmap"), 1;
    t = now();
    for (int i = 0; i < PAGES; i++) w[i * 4096] = sum;
    anon[r] = (now() - t) / PAGES;
    munmap((void *)w, PAGES * 4096);
  }
  printf("cpuid %.2f\n", median(cpuid));
  printf("file read fault (with fault-around) %.2f\n", median(fault));
  printf("page mapped by MADV_POPULATE_READ %.2f\n", median(populate));
  printf("anonymous write fault %.2f\n", median(anon));
  return 0;
}
