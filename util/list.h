/* util/list.h - an intrusive doubly linked list. A struct embeds one `struct dlink` per list
 * it can be on, and container_of (util/xalloc.h) gets the struct back from its link; adding
 * and removing cost nothing else. Whether a node is on its list is the caller's to know (the
 * engine keeps a flag beside each link). */
#ifndef SFN_UTIL_LIST_H
#define SFN_UTIL_LIST_H

#include <stddef.h>

struct dlink {
    struct dlink *prev, *next;
};

struct dlist {
    struct dlink *head, *tail;
};

static inline void dlist_push_back(struct dlist *l, struct dlink *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static inline void dlist_push_front(struct dlist *l, struct dlink *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head != NULL)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

/* Takes n, which is on l, off it. */
static inline void dlist_remove(struct dlist *l, struct dlink *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->next = n->prev = NULL;
}

#endif
