/* The Fashion-MNIST examples in their quick mode (examples/fashion_mnist, built as
 * fashion_<model>): each trains, reports a test accuracy well above chance, and writes its
 * files; --resume continues from the checkpoint; bad options and data fail with a message. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef JG_BUILD_DIR
#error "JG_BUILD_DIR: the build tree holding the examples (set by CMakeLists.txt)"
#endif

TestSuite(examples, .timeout = 600);

typedef struct result {
    int status;      /* exit status */
    char out[16384]; /* stdout and stderr, the end of it */
} result;

/* Runs build/<bin> with args in dir, capturing its output. */
static result run(const char *bin, const char *args, const char *dir)
{
    result r = { 0 };
    char cmd[2048], log[512];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(cmd, sizeof cmd, "%s/%s %s --out %s > %s 2>&1", JG_BUILD_DIR, bin, args, dir, log);
    int st = system(cmd);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    FILE *f = fopen(log, "r");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof r.out - 1 ? size - (long)sizeof r.out + 1 : 0, SEEK_SET);
    size_t n = fread(r.out, 1, sizeof r.out - 1, f);
    r.out[n] = '\0';
    fclose(f);
    return r;
}

static void temp_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/jg_examplesXXXXXX");
    cr_assert(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static void assert_file(const char *dir, const char *name)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert(stat(path, &st) == 0 && st.st_size > 0, "%s was not written", path);
}

/* Quick mode: one epoch on 2,048 images must beat chance (0.1) by far. */
static void check_quick(const char *model, double min_accuracy)
{
    char dir[64], bin[64], name[128];
    temp_dir(dir, sizeof dir);
    snprintf(bin, sizeof bin, "fashion_%s", model);
    result r = run(bin, "--quick", dir);
    cr_assert_eq(r.status, 0, "%s --quick failed:\n%s", bin, r.out);
    char key[64];
    snprintf(key, sizeof key, "%s: test accuracy ", model);
    const char *line = strstr(r.out, key);
    cr_assert(line, "no accuracy line:\n%s", r.out);
    double acc = atof(line + strlen(key));
    cr_assert_geq(acc, min_accuracy, "%s: accuracy %.4f after the quick run", model, acc);
    const char *files[] = { "%s.safetensors", "%s.csv", "%s.svg", "%s_misclassified.png",
                            "%s_confusion.csv" };
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, files[i], model);
        assert_file(dir, name);
    }
    remove_dir(dir);
}

Test(examples, mlp_quick) { check_quick("mlp", 0.4); }
Test(examples, cnn_quick) { check_quick("cnn", 0.4); }
Test(examples, rnn_quick) { check_quick("rnn", 0.3); }

Test(examples, resume_continues_from_the_checkpoint)
{
    char dir[64];
    temp_dir(dir, sizeof dir);
    result r = run("fashion_mlp", "--quick", dir);
    cr_assert_eq(r.status, 0, "%s", r.out);
    r = run("fashion_mlp", "--quick --epochs 2 --resume", dir);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert(strstr(r.out, "after epoch 1"), "%s", r.out);
    cr_assert(strstr(r.out, "epoch 2 "), "%s", r.out);
    cr_assert_null(strstr(r.out, "epoch 1 "), "epoch 1 ran again:\n%s", r.out);
    remove_dir(dir);
}

Test(examples, bad_options_and_data_fail_with_a_message)
{
    char dir[64];
    temp_dir(dir, sizeof dir);
    result r = run("fashion_mlp", "--epochs 0", dir);
    cr_assert_eq(r.status, 2, "%s", r.out);
    r = run("fashion_mlp", "--frobnicate 1", dir);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.out, "--frobnicate"), "%s", r.out);
    r = run("fashion_mlp", "--help", dir);
    cr_assert_eq(r.status, 0, "%s", r.out);
    cr_assert(strstr(r.out, "usage: mlp") && strstr(r.out, "--resume"), "%s", r.out);
    /* an output directory that cannot be made: named before any training */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/fashion_mlp --quick --out %s/no/deeper > %s/log.txt 2>&1 && exit 9; "
             "grep -q '%s/no/deeper' %s/log.txt", JG_BUILD_DIR, dir, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "no error naming %s/no/deeper", dir);
    r = run("fashion_mlp", "--quick --data /nonexistent", dir);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "/nonexistent/train-images-idx3-ubyte.gz"), "%s", r.out);
    r = run("fashion_mlp", "--quick --resume", dir); /* no checkpoint yet */
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "mlp.safetensors"), "%s", r.out);
    remove_dir(dir);
}
