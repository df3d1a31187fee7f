/* A fixed worker pool on one bounded queue.
 *
 * DESIGN: one mutex guards the ring of jobs and the counters; three condition variables
 * wake workers (job queued), producers (slot freed) and waiters (all done). Jobs run with
 * the mutex released, so a job may submit to another pool but must not wait on its own. */
#include "vx.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct pool_job {
    vx_job_fn fn;
    void *arg;
} pool_job;

struct vx_pool {
    pthread_mutex_t lock;
    pthread_cond_t job_ready;
    pthread_cond_t slot_free;
    pthread_cond_t all_done;
    pool_job *ring;
    int capacity;
    int head;
    int count;
    int running;
    int stopping;
    int thread_count;
    pthread_t *threads;
};

static void *pool_worker(void *arg)
{
    vx_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->count == 0 && !pool->stopping) pthread_cond_wait(&pool->job_ready, &pool->lock);
        if (pool->count == 0 && pool->stopping) break;
        pool_job job = pool->ring[pool->head];
        pool->head = (pool->head + 1) % pool->capacity;
        pool->count--;
        pool->running++;
        pthread_cond_signal(&pool->slot_free);
        pthread_mutex_unlock(&pool->lock);
        job.fn(job.arg);
        pthread_mutex_lock(&pool->lock);
        pool->running--;
        if (pool->count == 0 && pool->running == 0) pthread_cond_broadcast(&pool->all_done);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

vx_pool *vx_pool_create(int threads, int queue_capacity, vx_err *err)
{
    if (threads < 1 || queue_capacity < 1) {
        vx_fail(err, VX_EINVAL, "a pool needs at least one thread and one queue slot");
        return NULL;
    }
    vx_pool *pool = vx_calloc_array(1, sizeof *pool, err);
    if (!pool) return NULL;
    pool->ring = vx_calloc_array((size_t)queue_capacity, sizeof *pool->ring, err);
    pool->threads = vx_calloc_array((size_t)threads, sizeof *pool->threads, err);
    if (!pool->ring || !pool->threads) {
        free(pool->ring);
        free(pool->threads);
        free(pool);
        return NULL;
    }
    pool->capacity = queue_capacity;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->job_ready, NULL);
    pthread_cond_init(&pool->slot_free, NULL);
    pthread_cond_init(&pool->all_done, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, pool_worker, pool) != 0) {
            vx_fail(err, VX_ENOMEM, "cannot start worker thread %d", i);
            pool->thread_count = i;
            vx_pool_destroy(pool);
            return NULL;
        }
        pool->thread_count = i + 1;
    }
    return pool;
}

vx_status vx_pool_submit(vx_pool *pool, vx_job_fn fn, void *arg, vx_err *err)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return vx_fail(err, VX_EINVAL, "pool is shutting down");
    }
    while (pool->count == pool->capacity) pthread_cond_wait(&pool->slot_free, &pool->lock);
    int tail = (pool->head + pool->count) % pool->capacity;
    pool->ring[tail].fn = fn;
    pool->ring[tail].arg = arg;
    pool->count++;
    pthread_cond_signal(&pool->job_ready);
    pthread_mutex_unlock(&pool->lock);
    return VX_OK;
}

void vx_pool_wait(vx_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    while (pool->count > 0 || pool->running > 0) pthread_cond_wait(&pool->all_done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

void vx_pool_destroy(vx_pool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->job_ready);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->thread_count; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->job_ready);
    pthread_cond_destroy(&pool->slot_free);
    pthread_cond_destroy(&pool->all_done);
    free(pool->ring);
    free(pool->threads);
    free(pool);
}

int vx_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
