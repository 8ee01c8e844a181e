/* server/map.c - a string-keyed hash table of pointers (chained, doubling), for the API's
 * machines by name and running executions by ARN. */
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"
#include "util/xalloc.h"

struct smap_entry {
    struct smap_entry *next;
    void *value;
    uint64_t hash;
    char key[]; /* NUL-terminated copy */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void smap_init(struct smap *m)
{
    m->n_slots = 64;
    m->slots = xcalloc(m->n_slots, sizeof(*m->slots));
    m->n = 0;
}

void smap_release(struct smap *m)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        struct smap_entry *e = m->slots[i];
        while (e != NULL) {
            struct smap_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->n_slots = m->n = 0;
}

static struct smap_entry **find(const struct smap *m, const char *key, uint64_t h)
{
    struct smap_entry **pp = &m->slots[h & (m->n_slots - 1)];
    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *smap_get(const struct smap *m, const char *key)
{
    struct smap_entry **pp = find(m, key, hash_str(key));
    return *pp != NULL ? (*pp)->value : NULL;
}

static void grow(struct smap *m)
{
    size_t n = m->n_slots * 2;
    struct smap_entry **slots = xcalloc(n, sizeof(*slots));
    for (size_t i = 0; i < m->n_slots; i++) {
        struct smap_entry *e = m->slots[i];
        while (e != NULL) {
            struct smap_entry *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n;
}

void smap_put(struct smap *m, const char *key, void *value)
{
    uint64_t h = hash_str(key);
    struct smap_entry **pp = find(m, key, h);
    if (*pp != NULL) {
        (*pp)->value = value;
        return;
    }
    size_t len = strlen(key);
    struct smap_entry *e = xmalloc(sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (++m->n > m->n_slots)
        grow(m);
}

void *smap_del(struct smap *m, const char *key)
{
    struct smap_entry **pp = find(m, key, hash_str(key));
    struct smap_entry *e = *pp;
    if (e == NULL)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    m->n--;
    return v;
}

void smap_each(const struct smap *m, void (*fn)(const char *key, void *value, void *arg),
               void *arg)
{
    for (size_t i = 0; i < m->n_slots; i++) {
        for (struct smap_entry *e = m->slots[i]; e != NULL; e = e->next)
            fn(e->key, e->value, arg);
    }
}
