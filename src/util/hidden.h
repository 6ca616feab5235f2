/* HIDDEN marks a function shared between the library's files but not exported: the library
 * is built with -fvisibility=hidden and only the jg_ API (JG_API in jitgrad.h) is visible;
 * the mark says so where the function is declared. */
#ifndef JG_UTIL_HIDDEN_H
#define JG_UTIL_HIDDEN_H

#define HIDDEN __attribute__((visibility("hidden")))

#endif
