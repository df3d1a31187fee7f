/* indexer/idx_queue.h — a bounded FIFO of pointers for the indexer's pipeline threads (private
 * to indexer/). One mutex and two condition variables per queue; no function holds the lock
 * of more than one queue, so queues never deadlock on each other. */
#ifndef IDX_QUEUE_H
#define IDX_QUEUE_H

#include "vx.h"

#include <pthread.h>
#include <stddef.h>

typedef struct idx_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    void **items; /* ring of cap slots */
    size_t cap, head, count;
    int closed;
} idx_queue;

vx_status idx_queue_init(idx_queue *q, size_t cap, vx_err *err);
void idx_queue_destroy(idx_queue *q);
/* Blocks while the queue is full. Pushing onto a closed queue is a bug (asserted). */
void idx_queue_push(idx_queue *q, void *item);
/* Blocks while the queue is empty and open; NULL once it is closed and drained. */
void *idx_queue_pop(idx_queue *q);
/* No more pushes; wakes every waiting pop. */
void idx_queue_close(idx_queue *q);

#endif
