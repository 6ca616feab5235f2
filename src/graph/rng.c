/* Counter-based random numbers: a value is a pure function of (key, counter), so
 * initialisation, dropout masks and shuffles are reproducible and need no stored state. */
#include "graph/graph.h"

#include <math.h>

/* splitmix64's finaliser: a bijective mix with full avalanche. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_u64(uint64_t key, uint64_t counter)
{
    return mix64(mix64(key + 0x9e3779b97f4a7c15ULL) ^ (counter * 0xd1b54a32d192ed03ULL));
}

double rng_uniform(uint64_t key, uint64_t counter)
{
    return (double)(rng_u64(key, counter) >> 11) * 0x1.0p-53;
}

double rng_normal(uint64_t key, uint64_t counter)
{
    /* Box-Muller on two independent draws; 1 - u keeps log's argument in (0, 1]. */
    double u = 1.0 - rng_uniform(key, 2 * counter);
    double v = rng_uniform(key, 2 * counter + 1);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint64_t rng_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}
