/* The little of libc a freestanding guest needs (the compiler may emit
 * calls to memcpy/memset itself). */
#ifndef TESTGUEST_LIB_H
#define TESTGUEST_LIB_H

#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
