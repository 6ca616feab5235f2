/* Datasets and loaders: subsets, ranges, splits and class filters select the right samples;
 * a loader visits every sample once per epoch, reshuffled each epoch, reproducibly from its
 * seed; drop_last; misuse. Sample i of the test data holds the values 100 i + k, label i % 4. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(dataset);

enum { N = 10, K = 3 }; /* samples, elements per sample ([N, 3, 1]) */

typedef struct data {
    float x[N * K];
    int32_t y[N];
    jg_array xa, ya;
    jg_dataset *ds;
} data;

static void make(data *d)
{
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < K; k++)
            d->x[i * K + k] = (float)(100 * i + k);
        d->y[i] = i % 4;
    }
    d->xa = (jg_array){ JG_F32, jg_shape(N, K, 1), d->x };
    d->ya = (jg_array){ JG_I32, jg_shape(N), d->y };
    char err[128];
    cr_assert_eq(jg_dataset_new(&d->xa, &d->ya, &d->ds, err, sizeof err), JG_OK, "%s", err);
}

/* The original sample index of ds's sample i (read back from its values), checking that
 * the values belong together. */
static int sample_id(jg_dataset *ds, int64_t i, int32_t *label)
{
    float x[K];
    cr_assert_eq(jg_dataset_get(ds, i, x, label), JG_OK, "%s", jg_dataset_errmsg(ds));
    int id = (int)x[0] / 100;
    for (int k = 0; k < K; k++)
        cr_assert_eq(x[k], (float)(100 * id + k));
    return id;
}

Test(dataset, new_and_get)
{
    data d;
    make(&d);
    cr_assert_eq(jg_dataset_size(d.ds), N);
    cr_assert_eq(jg_dataset_sample_numel(d.ds), K);
    jg_shape s = jg_dataset_sample_shape(d.ds);
    cr_assert(s.ndim == 2 && s.dim[0] == K && s.dim[1] == 1);
    for (int i = 0; i < N; i++) {
        int32_t label;
        cr_assert_eq(sample_id(d.ds, i, &label), i);
        cr_assert_eq(label, i % 4);
    }
    cr_assert_eq(jg_dataset_get(d.ds, N, NULL, NULL), JG_ERR_RANGE);
    cr_assert(strstr(jg_dataset_errmsg(d.ds), "jg_dataset_get: index 10 out of range [0, 10)"));
    jg_dataset_free(d.ds);
}

Test(dataset, f64_samples_and_unlabelled_data)
{
    double x[4] = { 0.5, 1.5, 2.5, 3.5 };
    jg_array xa = { JG_F64, jg_shape(4), x };
    jg_dataset *ds;
    cr_assert_eq(jg_dataset_new(&xa, NULL, &ds, NULL, 0), JG_OK);
    cr_assert_eq(jg_dataset_sample_numel(ds), 1);
    cr_assert_eq(jg_dataset_sample_shape(ds).ndim, 0);
    float v;
    int32_t label = 7;
    jg_dataset_get(ds, 2, &v, &label);
    cr_assert(v == 2.5f && label == 0);
    jg_dataset_free(ds);
}

Test(dataset, subset_and_range)
{
    data d;
    make(&d);
    jg_dataset *sub = jg_dataset_subset(d.ds, (int64_t[]){ 7, 2, 2, 9 }, 4);
    cr_assert_not_null(sub, "%s", jg_dataset_errmsg(d.ds));
    cr_assert_eq(jg_dataset_size(sub), 4);
    int want[] = { 7, 2, 2, 9 };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sample_id(sub, i, NULL), want[i]);
    /* a range of a subset indexes the subset; it outlives its parent */
    jg_dataset *r = jg_dataset_range(sub, 1, 3);
    jg_dataset_free(sub);
    cr_assert_eq(jg_dataset_size(r), 2);
    int32_t label;
    cr_assert_eq(sample_id(r, 0, &label), 2);
    cr_assert_eq(label, 2);
    cr_assert_eq(sample_id(r, 1, NULL), 2);
    jg_dataset_free(r);
    jg_dataset *empty = jg_dataset_range(d.ds, 4, 4);
    cr_assert_not_null(empty);
    cr_assert_eq(jg_dataset_size(empty), 0);
    jg_dataset_free(empty);
    jg_dataset_free(d.ds);
}

Test(dataset, split_is_a_seeded_partition)
{
    data d;
    make(&d);
    jg_dataset *a, *b, *a2, *b2, *a3, *b3;
    cr_assert_eq(jg_dataset_split(d.ds, 0.7, 42, &a, &b), JG_OK, "%s", jg_dataset_errmsg(d.ds));
    cr_assert_eq(jg_dataset_size(a), 7);
    cr_assert_eq(jg_dataset_size(b), 3);
    int seen[N] = { 0 }, order[N];
    for (int i = 0; i < 7; i++)
        seen[order[i] = sample_id(a, i, NULL)]++;
    for (int i = 0; i < 3; i++)
        seen[order[7 + i] = sample_id(b, i, NULL)]++;
    for (int i = 0; i < N; i++)
        cr_assert_eq(seen[i], 1, "sample %d appears %d times", i, seen[i]);
    /* same seed, same split; another seed, another one */
    cr_assert_eq(jg_dataset_split(d.ds, 0.7, 42, &a2, &b2), JG_OK);
    cr_assert_eq(jg_dataset_split(d.ds, 0.7, 43, &a3, &b3), JG_OK);
    bool differs = false;
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(sample_id(a2, i, NULL), order[i]);
        differs |= sample_id(a3, i, NULL) != order[i];
    }
    cr_assert(differs, "seeds 42 and 43 gave the same split");
    /* the split is shuffled, not the first 7 */
    bool shuffled = false;
    for (int i = 0; i < N; i++)
        shuffled |= order[i] != i;
    cr_assert(shuffled);
    jg_dataset *f0, *f1;
    cr_assert_eq(jg_dataset_split(d.ds, 0, 1, &f0, &f1), JG_OK);
    cr_assert(jg_dataset_size(f0) == 0 && jg_dataset_size(f1) == N);
    jg_dataset *all[] = { a, b, a2, b2, a3, b3, f0, f1, d.ds };
    for (int i = 0; i < 9; i++)
        jg_dataset_free(all[i]);
}

Test(dataset, filter_classes)
{
    data d;
    make(&d);
    /* labels: 0 1 2 3 0 1 2 3 0 1 */
    jg_dataset *f = jg_dataset_filter_classes(d.ds, (int32_t[]){ 3, 1 }, 2, false);
    cr_assert_not_null(f, "%s", jg_dataset_errmsg(d.ds));
    int want[] = { 1, 3, 5, 7, 9 };
    cr_assert_eq(jg_dataset_size(f), 5);
    for (int i = 0; i < 5; i++) {
        int32_t label;
        cr_assert_eq(sample_id(f, i, &label), want[i]);
        cr_assert_eq(label, want[i] % 4);
    }
    jg_dataset *r = jg_dataset_filter_classes(d.ds, (int32_t[]){ 3, 1 }, 2, true);
    for (int i = 0; i < 5; i++) {
        int32_t label;
        cr_assert_eq(sample_id(r, i, &label), want[i]);
        cr_assert_eq(label, want[i] % 4 == 3 ? 0 : 1, "relabelled by position in classes");
    }
    cr_assert_eq(d.y[3], 3, "relabelling wrote into the borrowed labels");
    /* filtering the relabelled view sees the new labels */
    jg_dataset *rr = jg_dataset_filter_classes(r, (int32_t[]){ 0 }, 1, false);
    cr_assert_eq(jg_dataset_size(rr), 2);
    jg_dataset *none = jg_dataset_filter_classes(d.ds, (int32_t[]){ 99 }, 1, true);
    cr_assert_eq(jg_dataset_size(none), 0);
    jg_dataset *all[] = { f, r, rr, none, d.ds };
    for (int i = 0; i < 5; i++)
        jg_dataset_free(all[i]);
}

/* Runs one epoch; returns the number of batches, fills ids with the visiting order. */
static int epoch(jg_loader *ld, int batch, int *ids, int *total, int *last_n)
{
    float x[16 * K];
    int32_t y[16];
    int n, batches = 0;
    *total = 0;
    while (jg_loader_next(ld, x, y, &n)) {
        cr_assert(n >= 1 && n <= batch);
        for (int i = 0; i < n; i++) {
            int id = (int)x[i * K] / 100;
            for (int k = 0; k < K; k++)
                cr_assert_eq(x[i * K + k], (float)(100 * id + k));
            cr_assert_eq(y[i], id % 4);
            ids[(*total)++] = id;
        }
        *last_n = n;
        batches++;
    }
    cr_assert_eq(n, 0);
    return batches;
}

Test(dataset, loader_covers_every_sample_once_per_epoch)
{
    data d;
    make(&d);
    jg_loader *ld = jg_loader_new(d.ds, 4, &(jg_loader_opts){ .shuffle = true, .seed = 7 });
    cr_assert_not_null(ld, "%s", jg_dataset_errmsg(d.ds));
    cr_assert_eq(jg_loader_batches(ld), 3);
    int ids[3][N], total, last_n;
    for (int e = 0; e < 3; e++) {
        cr_assert_eq(jg_loader_epoch(ld), e);
        cr_assert_eq(epoch(ld, 4, ids[e], &total, &last_n), 3);
        cr_assert_eq(total, N);
        cr_assert_eq(last_n, 2, "the short last batch is kept");
        int seen[N] = { 0 };
        for (int i = 0; i < N; i++)
            seen[ids[e][i]]++;
        for (int i = 0; i < N; i++)
            cr_assert_eq(seen[i], 1, "epoch %d: sample %d seen %d times", e, i, seen[i]);
    }
    cr_assert_eq(jg_loader_epoch(ld), 3);
    cr_assert(memcmp(ids[0], ids[1], sizeof ids[0]) != 0, "epochs 0 and 1 in the same order");
    cr_assert(memcmp(ids[1], ids[2], sizeof ids[0]) != 0, "epochs 1 and 2 in the same order");
    /* the same seed replays the same orders; another seed does not */
    jg_loader *again = jg_loader_new(d.ds, 4, &(jg_loader_opts){ .shuffle = true, .seed = 7 });
    jg_loader *other = jg_loader_new(d.ds, 4, &(jg_loader_opts){ .shuffle = true, .seed = 8 });
    int a[N], o[N];
    bool differs = false;
    for (int e = 0; e < 3; e++) {
        epoch(again, 4, a, &total, &last_n);
        epoch(other, 4, o, &total, &last_n);
        cr_assert(memcmp(a, ids[e], sizeof a) == 0, "seed 7 epoch %d not replayed", e);
        differs |= memcmp(o, ids[e], sizeof o) != 0;
    }
    cr_assert(differs, "seeds 7 and 8 gave the same orders");
    jg_loader_free(ld);
    jg_loader_free(again);
    jg_loader_free(other);
    jg_dataset_free(d.ds);
}

Test(dataset, loader_without_shuffle_and_with_drop_last)
{
    data d;
    make(&d);
    jg_loader *ld = jg_loader_new(d.ds, 3, NULL);
    int ids[N], total, last_n;
    for (int e = 0; e < 2; e++) {
        cr_assert_eq(epoch(ld, 3, ids, &total, &last_n), 4);
        cr_assert_eq(last_n, 1);
        for (int i = 0; i < N; i++)
            cr_assert_eq(ids[i], i, "unshuffled order");
    }
    jg_loader_free(ld);

    ld = jg_loader_new(d.ds, 3, &(jg_loader_opts){ .drop_last = true, .shuffle = true });
    cr_assert_eq(jg_loader_batches(ld), 3);
    int seen[N] = { 0 };
    for (int e = 0; e < 4; e++) {
        cr_assert_eq(epoch(ld, 3, ids, &total, &last_n), 3);
        cr_assert_eq(total, 9);
        cr_assert_eq(last_n, 3);
        for (int i = 0; i < total; i++)
            seen[ids[i]]++;
    }
    /* each epoch drops a different sample: over 4 epochs, not always the same one */
    int never = 0;
    for (int i = 0; i < N; i++)
        never += seen[i] == 0;
    cr_assert_eq(never, 0, "a sample was dropped in every epoch");
    jg_loader_free(ld);

    /* outputs may be NULL; a NULL loader ends at once */
    ld = jg_loader_new(d.ds, 16, NULL);
    int n;
    cr_assert(jg_loader_next(ld, NULL, NULL, &n) && n == N);
    cr_assert(!jg_loader_next(ld, NULL, NULL, NULL));
    cr_assert(!jg_loader_next(NULL, NULL, NULL, &n) && n == 0);
    jg_loader_free(ld);
    jg_dataset_free(d.ds);
}

/* A shuffled loader feeding a training program: a full pass over the dataset. */
Test(dataset, loader_feeds_a_program)
{
    data d;
    make(&d);
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(5, K, 1));
    jg_node *s = jg_sum(x, JG_ALL_AXES, false);
    jg_program *p = jg_compile(g, &s, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    jg_loader *ld = jg_loader_new(d.ds, 5, &(jg_loader_opts){ .shuffle = true, .seed = 3,
                                                             .drop_last = true });
    float xb[5 * K], total = 0, part;
    int n;
    while (jg_loader_next(ld, xb, NULL, &n)) {
        cr_assert_eq(jg_program_set(p, "x", xb, sizeof xb), JG_OK);
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        jg_program_get(p, 0, &part, sizeof part);
        total += part;
    }
    float want = 0;
    for (int i = 0; i < N * K; i++)
        want += d.x[i];
    cr_assert_float_eq(total, want, 1e-3);
    jg_loader_free(ld);
    jg_program_free(p);
    jg_graph_free(g);
    jg_dataset_free(d.ds);
}

static void expect_new_fails(const jg_array *x, const jg_array *y, jg_status st,
                             const char *part)
{
    char err[256] = "untouched";
    jg_dataset *ds = (jg_dataset *)1;
    cr_assert_eq(jg_dataset_new(x, y, &ds, err, sizeof err), st, "%s", err);
    cr_assert_null(ds);
    cr_assert(strstr(err, part), "message '%s' lacks '%s'", err, part);
}

Test(dataset, misuse)
{
    float x[6] = { 0 };
    int32_t y[3] = { 0 };
    double yd[3] = { 0 };
    jg_array xa = { JG_F32, jg_shape(3, 2), x }, ya = { JG_I32, jg_shape(3), y };
    expect_new_fails(NULL, &ya, JG_ERR_ARG, "jg_dataset_new: x is NULL");
    expect_new_fails(&(jg_array){ JG_F32, jg_shape(3, 2), NULL }, &ya, JG_ERR_ARG,
                     "x is empty");
    expect_new_fails(&(jg_array){ JG_I32, jg_shape(3, 2), x }, &ya, JG_ERR_DTYPE,
                     "x is i32 (must be f32 or f64)");
    expect_new_fails(&(jg_array){ JG_F32, JG_SCALAR, x }, &ya, JG_ERR_SHAPE,
                     "x has shape [] (must be [n, ...])");
    expect_new_fails(&xa, &(jg_array){ JG_F64, jg_shape(3), yd }, JG_ERR_DTYPE,
                     "y is f64 (labels must be i32)");
    expect_new_fails(&xa, &(jg_array){ JG_I32, jg_shape(2), y }, JG_ERR_SHAPE,
                     "x [3,2] and y [2]: y must be [n] or [n, 1]");
    expect_new_fails(&xa, &(jg_array){ JG_I32, jg_shape(3, 2), x }, JG_ERR_SHAPE, "y [3,2]");
    cr_assert_eq(jg_dataset_new(&xa, &ya, NULL, NULL, 0), JG_ERR_ARG);

    jg_dataset *ds;
    cr_assert_eq(jg_dataset_new(&xa, &(jg_array){ JG_I32, jg_shape(3, 1), y }, &ds, NULL, 0),
                 JG_OK);
    const char *parts[] = {
        "jg_dataset_subset: indices[1] = 3 out of range [0, 3)",
        "jg_dataset_subset: bad index list (n 2",
        "jg_dataset_range: [2, 1) is not within [0, 3]",
        "jg_dataset_range: [0, 4) is not within",
        "jg_dataset_filter_classes: class 1 is listed twice (at 0 and 2)",
        "jg_dataset_filter_classes: bad class list",
        "jg_loader_new: batch 0 (must be >= 1)",
        "jg_loader_new: batch 4 > 3 samples with drop_last: an epoch would have no batch",
    };
    for (int i = 0; i < (int)(sizeof parts / sizeof parts[0]); i++) {
        void *got = NULL;
        switch (i) {
        case 0: got = jg_dataset_subset(ds, (int64_t[]){ 0, 3 }, 2); break;
        case 1: got = jg_dataset_subset(ds, NULL, 2); break;
        case 2: got = jg_dataset_range(ds, 2, 1); break;
        case 3: got = jg_dataset_range(ds, 0, 4); break;
        case 4: got = jg_dataset_filter_classes(ds, (int32_t[]){ 1, 2, 1 }, 3, true); break;
        case 5: got = jg_dataset_filter_classes(ds, NULL, 1, true); break;
        case 6: got = jg_loader_new(ds, 0, NULL); break;
        case 7: got = jg_loader_new(ds, 4, &(jg_loader_opts){ .drop_last = true }); break;
        }
        cr_assert_null(got, "case %d succeeded", i);
        cr_assert(strstr(jg_dataset_errmsg(ds), parts[i]), "case %d: '%s' lacks '%s'", i,
                  jg_dataset_errmsg(ds), parts[i]);
    }
    jg_dataset *a, *b = (jg_dataset *)1;
    cr_assert_eq(jg_dataset_split(ds, 1.5, 0, &a, &b), JG_ERR_ARG);
    cr_assert(a == NULL && b == NULL);
    cr_assert(strstr(jg_dataset_errmsg(ds), "jg_dataset_split: fraction 1.5 (must be in [0, 1])"));
    cr_assert_eq(jg_dataset_split(ds, NAN, 0, &a, &b), JG_ERR_ARG);
    cr_assert_eq(jg_dataset_split(ds, 0.5, 0, &a, NULL), JG_ERR_ARG);
    cr_assert_null(a);

    jg_dataset *empty = jg_dataset_range(ds, 1, 1);
    cr_assert_null(jg_loader_new(empty, 1, NULL));
    cr_assert(strstr(jg_dataset_errmsg(empty), "jg_loader_new: the dataset is empty"));
    jg_dataset_free(empty);

    /* NULL handles */
    cr_assert_null(jg_dataset_subset(NULL, (int64_t[]){ 0 }, 1));
    cr_assert_null(jg_dataset_range(NULL, 0, 0));
    cr_assert_null(jg_dataset_filter_classes(NULL, (int32_t[]){ 0 }, 1, false));
    cr_assert_null(jg_loader_new(NULL, 1, NULL));
    cr_assert_eq(jg_dataset_split(NULL, 0.5, 0, &a, &b), JG_ERR_ARG);
    cr_assert_eq(jg_dataset_get(NULL, 0, NULL, NULL), JG_ERR_ARG);
    cr_assert_eq(jg_dataset_size(NULL), 0);
    cr_assert_eq(jg_loader_epoch(NULL), 0);
    cr_assert_eq(jg_loader_batches(NULL), 0);
    jg_dataset_free(NULL);
    jg_loader_free(NULL);
    jg_dataset_free(ds);
}
