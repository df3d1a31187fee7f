/* indexer/idx_queue.c — the bounded FIFO of idx_queue.h. */
#include "idx_queue.h"

#include <assert.h>
#include <stdlib.h>

vx_status idx_queue_init(idx_queue *q, size_t cap, vx_err *err)
{
    q->items = vx_calloc_array(cap ? cap : 1, sizeof *q->items, err);
    if (!q->items) return VX_ENOMEM;
    q->cap = cap ? cap : 1;
    q->head = q->count = 0;
    q->closed = 0;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    return VX_OK;
}

void idx_queue_destroy(idx_queue *q)
{
    if (!q->items) return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->items);
    q->items = NULL;
}

void idx_queue_push(idx_queue *q, void *item)
{
    pthread_mutex_lock(&q->mu);
    assert(!q->closed);
    while (q->count == q->cap)
        pthread_cond_wait(&q->not_full, &q->mu);
    q->items[(q->head + q->count) % q->cap] = item;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

void *idx_queue_pop(idx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->closed)
        pthread_cond_wait(&q->not_empty, &q->mu);
    void *item = NULL;
    if (q->count > 0) {
        item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return item;
}

void idx_queue_close(idx_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}
