/* Every lesson program (examples/lessons, listed in jg-lessons.txt) in its quick mode: it
 * exits 0 and its last line is a verdict, HOLDS or DOES NOT HOLD, for its own number. One
 * test per lesson, so that Criterion runs them side by side (--jobs) and names the one that
 * fails. */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef JG_BUILD_DIR
#error "JG_BUILD_DIR: the build tree holding the lessons (set by CMakeLists.txt)"
#endif

enum { LESSONS = 25 };

TestSuite(lessons, .timeout = 600);

/* The lesson's number from a path ".../lesson_NN_name", or 0. */
static int lesson_number(const char *path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    return strncmp(base, "lesson_", 7) == 0 ? atoi(base + 7) : 0;
}

/* The path of lesson nn's program from jg-lessons.txt into bin; false when it is not listed. */
static bool find_lesson(int nn, char *bin, size_t size)
{
    FILE *m = fopen(JG_BUILD_DIR "/jg-lessons.txt", "r");
    cr_assert(m, "jg-lessons.txt missing");
    bool found = false;
    while (!found && fgets(bin, (int)size, m)) {
        bin[strcspn(bin, "\n")] = '\0';
        found = bin[0] && lesson_number(bin) == nn;
    }
    fclose(m);
    return found;
}

/* The last non-empty line of a file, into line. */
static void last_line(const char *path, char *line, size_t size)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    char buf[1024];
    line[0] = '\0';
    while (fgets(buf, sizeof buf, f))
        if (buf[0] != '\n')
            snprintf(line, size, "%s", buf);
    fclose(f);
}

/* Runs lesson nn with the arguments, its output (stdout and stderr) into the file log;
 * returns its exit status (-1: it did not exit). */
static int run_lesson(int nn, const char *args, const char *log)
{
    char bin[1024], cmd[2400];
    cr_assert(find_lesson(nn, bin, sizeof bin), "lesson %02d is not in jg-lessons.txt", nn);
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2>&1", bin, args, log);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void quick_run_prints_a_verdict(int nn)
{
    char out[] = "/tmp/jg_lessonXXXXXX";
    cr_assert(mkdtemp(out));
    char args[256], log[256], line[1024], want[32];
    snprintf(log, sizeof log, "%s/%02d.log", out, nn);
    /* one thread each: the tests run side by side */
    snprintf(args, sizeof args, "--quick --threads 1 --out '%s'", out);
    int status = run_lesson(nn, args, log);
    last_line(log, line, sizeof line);
    snprintf(want, sizeof want, "lesson %02d ", nn);
    cr_assert_eq(status, 0, "lesson %02d --quick: exit %d, last line: %s (log %s)", nn, status,
                 line, log);
    cr_assert(strncmp(line, want, strlen(want)) == 0 &&
                  (strstr(line, ": HOLDS (") || strstr(line, ": DOES NOT HOLD (")),
              "lesson %02d --quick: no verdict line, last line: %s (log %s)", nn, line, log);
    /* removed only when the lesson passed: a failure keeps its log */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    cr_assert_eq(system(cmd), 0);
}

Test(lessons, all_25_are_built_once)
{
    int seen[LESSONS + 1] = { 0 }, count = 0;
    char bin[1024];
    FILE *m = fopen(JG_BUILD_DIR "/jg-lessons.txt", "r");
    cr_assert(m, "jg-lessons.txt missing");
    while (fgets(bin, sizeof bin, m)) {
        bin[strcspn(bin, "\n")] = '\0';
        if (!bin[0])
            continue;
        int nn = lesson_number(bin);
        cr_expect(nn >= 1 && nn <= LESSONS, "not a lesson: %s", bin);
        if (nn >= 1 && nn <= LESSONS)
            seen[nn]++;
        count++;
    }
    fclose(m);
    cr_expect_eq(count, LESSONS);
    for (int nn = 1; nn <= LESSONS; nn++)
        cr_expect_eq(seen[nn], 1, "lesson %02d listed %d times", nn, seen[nn]);
}

/* Runs lesson nn with the arguments; its exit status, and its output in out. */
static int run_with(int nn, const char *args, char *out, size_t size)
{
    char log[] = "/tmp/jg_lesson_logXXXXXX";
    int fd = mkstemp(log);
    cr_assert(fd >= 0);
    close(fd);
    int status = run_lesson(nn, args, log);
    FILE *f = fopen(log, "r");
    cr_assert(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
    remove(log);
    return status;
}

Test(lessons, bad_options_and_data_are_errors_that_say_why)
{
    char out[4096];
    cr_expect_eq(run_with(14, "--bogus", out, sizeof out), 2, "%s", out);
    cr_expect(strstr(out, "unknown option --bogus"), "%s", out);
    cr_expect_eq(run_with(14, "--quick --threads", out, sizeof out), 2, "%s", out);
    cr_expect(strstr(out, "missing value for --threads"), "%s", out);
    cr_expect_eq(run_with(14, "--quick --threads many", out, sizeof out), 2, "%s", out);
    cr_expect(strstr(out, "not 'many'"), "%s", out);
    cr_expect_eq(run_with(14, "--help", out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "--quick"), "%s", out);
    cr_expect_eq(run_with(14, "--quick --data /nonexistent/fashion --out /tmp", out, sizeof out), 1,
                 "%s", out);
    cr_expect(strstr(out, "lesson 14 relu-then-sigmoid: ERROR (/nonexistent/fashion/"), "%s", out);
}

/* Decimal numbers, not zero-padded: 08 and 09 would be invalid octal literals. */
#define QUICK(nn) \
    Test(lessons, quick_##nn) { quick_run_prints_a_verdict(nn); }
QUICK(1) QUICK(2) QUICK(3) QUICK(4) QUICK(5) QUICK(6) QUICK(7) QUICK(8) QUICK(9) QUICK(10)
QUICK(11) QUICK(12) QUICK(13) QUICK(14) QUICK(15) QUICK(16) QUICK(17) QUICK(18) QUICK(19)
QUICK(20) QUICK(21) QUICK(22) QUICK(23) QUICK(24) QUICK(25)
