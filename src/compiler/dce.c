/* Dead-code elimination (pass "dce"): drops the nodes no output or update needs, such as
 * what an earlier pass replaced or what lowering decomposed and then folded. Every rewrite
 * copies only needed nodes, so this is a rewrite with no rule; it runs last to leave the
 * fuser a graph without orphans when the other passes are off. */
#include "compiler/pass.h"

bool pass_dce(pass_ctx *c) { return pass_rewrite(c, NULL, NULL); }
