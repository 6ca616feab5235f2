/* Learning-rate schedules, computed on the host between runs: the training program reads its
 * rate from the store entry "<name>.lr", so a schedule is a number written there before a
 * run, not a graph node, and changing it needs no recompiling. */
#include "graph/graph.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

/* The schedule's fields make sense for its kind; each test is written so that NaN fails. */
static bool schedule_ok(const jg_schedule *s)
{
    if (!(s->lr > 0 && s->lr <= DBL_MAX) || s->warmup < 0)
        return false;
    switch (s->kind) {
    case JG_SCHED_CONSTANT:
        return true;
    case JG_SCHED_STEP:
        return s->gamma > 0 && s->gamma <= 1 && s->step_size >= 1;
    case JG_SCHED_EXPONENTIAL:
        return s->gamma > 0 && s->gamma <= 1;
    case JG_SCHED_COSINE:
        return s->t_max >= 1 && s->min_lr >= 0 && s->min_lr <= s->lr;
    }
    return false;
}

double jg_lr_at(const jg_schedule *s, int64_t step)
{
    if (!s || step < 0 || !schedule_ok(s))
        return NAN;
    if (step < s->warmup)
        return s->lr * (double)step / (double)s->warmup;
    int64_t u = step - s->warmup;
    switch (s->kind) {
    case JG_SCHED_CONSTANT:
        return s->lr;
    case JG_SCHED_STEP:
        return s->lr * pow(s->gamma, (double)(u / s->step_size));
    case JG_SCHED_EXPONENTIAL:
        return s->lr * pow(s->gamma, (double)u);
    case JG_SCHED_COSINE: {
        double f = (double)(u < s->t_max ? u : s->t_max) / (double)s->t_max;
        return s->min_lr + (s->lr - s->min_lr) * (1 + cos(3.14159265358979323846 * f)) / 2;
    }
    }
    return NAN;
}

jg_status jg_program_set_lr(jg_graph *g, const char *opt_name, double lr)
{
    if (!g)
        return JG_ERR_ARG;
    const char *prefix = opt_name && *opt_name ? opt_name : "opt";
    if (!(lr >= 0 && lr <= DBL_MAX)) {
        graph_note(g, "jg_program_set_lr: lr %g for '%s' (must be >= 0 and finite)", lr,
                   prefix);
        return JG_ERR_ARG;
    }
    char name[256];
    int n = snprintf(name, sizeof name, "%s.lr", prefix);
    graph_param *p = n > 0 && (size_t)n < sizeof name ? store_find(g, name) : NULL;
    if (!p || p->node->dtype != JG_F64 || p->node->shape.ndim != 0) {
        graph_note(g, "jg_program_set_lr: no learning rate '%.200s.lr' in the store (compile "
                   "a training program with opts.name \"%.200s\" first)", prefix, prefix);
        return JG_ERR_ARG;
    }
    return jg_param_set(g, name, &lr, sizeof lr);
}
