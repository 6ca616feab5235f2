/* Randomness and train/eval behaviour.
 * random: uniform [0, 1) values from the counter-based generator keyed by (the node's stream,
 * the program's run step, the element), so a dropout mask is a pure function of where it is
 * and when: the JIT recomputes it wherever it is needed instead of storing it, and a run is
 * reproducible from its seed. mode(train, eval): the first operand in training programs, the
 * second in evaluation programs; executors resolve it when compiling. */
#include "ops/op.h"

static jg_status no_infer(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                          jg_dtype *dtype, char *why)
{
    (void)in, (void)n_in, (void)attr, (void)shape, (void)dtype;
    snprintf(why, OP_ERR_SIZE, "built by jg_dropout only");
    return JG_ERR_ARG;
}

static jg_status infer_mode(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                            jg_dtype *dtype, char *why)
{
    (void)n_in, (void)attr;
    char a[96], b[96];
    if (!shape_eq(in[0]->shape, in[1]->shape) || in[0]->dtype != in[1]->dtype) {
        snprintf(why, OP_ERR_SIZE, "training and evaluation values differ: %s%s and %s%s",
                 jg_dtype_str(in[0]->dtype), FMT_SHAPE(a, in[0]->shape),
                 jg_dtype_str(in[1]->dtype), FMT_SHAPE(b, in[1]->shape));
        return JG_ERR_SHAPE;
    }
    *shape = in[0]->shape;
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* A zero that lowering treats as "no gradient flows" (FILL_NO_FLOW). */
static jg_node *no_flow(jg_node *like)
{
    jg_node *z = jg_fill_(like->at, like->graph, like->dtype, like->shape, 0);
    if (!node_poisoned(z))
        z->attr.count = FILL_NO_FLOW;
    return z;
}

/* Each operand gets dy in the programs that pick it and nothing in the others: a training
 * program differentiates the training branch, an evaluation program (saliency, input
 * gradients of a trained model, as PyTorch's model.eval()) the evaluation one. */
static void mode_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_mode_(n->at, dy, no_flow(dy));
    dx[1] = jg_mode_(n->at, no_flow(dy), dy);
}

/* The executors read the program's step and mode themselves (reference.c, the JIT). */
const op_def op_random = { .kind = KIND_LEAF, .infer = no_infer,
                           .no_grad = true };
const op_def op_mode = { .arity = 2, .kind = KIND_OPAQUE, .infer = infer_mode,
                         .grad = mode_grad };

double random_value(uint64_t key, uint64_t step, int64_t i)
{
    return rng_uniform(rng_u64(key, step), (uint64_t)i);
}

jg_node *jg_mode_(jg_loc at, jg_node *train, jg_node *eval)
{
    jg_node *in[2] = { train, eval };
    return op_build(at, JG_OP_MODE, in, 2, NULL);
}

jg_node *jg_dropout_(jg_loc at, jg_node *x, double p)
{
    if (!x || node_poisoned(x))
        return op_build(at, JG_OP_NEG, &x, 1, NULL); /* NULL or poison: propagate */
    jg_graph *g = x->graph;
    if (!(p >= 0 && p < 1)) {
        graph_error(g, at, JG_ERR_ARG, "jg_dropout: probability %g outside [0, 1)", p);
        return g->poison;
    }
    if (x->dtype == JG_I32) {
        graph_error(g, at, JG_ERR_DTYPE, "jg_dropout: needs a float operand, got i32");
        return g->poison;
    }
    if (p == 0)
        return x;
    /* the stream: the graph seed and this node's position, stable across programs */
    uint64_t key = rng_u64(g->seed ^ 0xd509, (uint64_t)g->n_nodes);
    jg_node *u = graph_node_new(g, at, JG_OP_RANDOM, x->dtype, x->shape, NULL, 0,
                                &(op_attr){ .key = key });
    jg_node *keep = jg_lt_(at, u, jg_scalar_(at, g, x->dtype, 1 - p));
    jg_node *train = jg_mul_(at, x, jg_scale_(at, keep, 1 / (1 - p)));
    return jg_mode_(at, train, x);
}
