/* Two threads for one stream: the rows of each recurrence step split between the
 * calling thread (half 0) and one helper thread (half 1) that lives for one kernel call.
 *
 * Each step is published by the calling thread ("main") with a step number; the second
 * half goes to whichever thread claims it first with a compare-and-swap, so a helper
 * that is late (preempted, sleeping, not started) never holds main up by more than
 * CHARRNN_SPLIT_CLAIM_NS: main claims the half and computes it itself. Both threads run
 * the same code on the same rows, so the results are the same bits whoever computes
 * them. Main counts the time it lost: the waits for a claim before taking a half over
 * (CHARRNN_SPLIT_CLAIM_NS at most, and only after a step the helper computed), and the
 * wait for a claimed half beyond the time main's own half took (what computing it
 * alone would have cost), where that excess passes CHARRNN_SPLIT_LATE_NS (a helper
 * preempted in the middle of its half can cost a scheduler's time slice). Counting
 * the whole wait instead made large models (a half of 40-170 us at H=512-1024) fall
 * back in their first steps for no loss at all. It falls back to one thread for the rest of the call
 * when the time lost within a window of 256 steps exceeds 1/32 of the window's time so
 * far (but at least 0.5 ms), or when the helper has not claimed a single half in the first 256 steps: the
 * other core is busy elsewhere. A helper off its core for a moment (a timer, the
 * hypervisor) costs one take-over, 1 us, and no fallback.
 *
 * The helper spins (with the CPU's pause hint) while steps come, then yields, then
 * sleeps in short naps, so that a long pause between recurrences does not burn a core
 * for long. All bounds are clock times, not counts of pauses (a pause costs 10 cycles
 * on one CPU and 140 on another).
 *
 * Ordering: main writes the job of step g, then stores published = g (release); the
 * helper acquires published, claims with an acq_rel CAS claimed: g-1 -> g, reads the
 * job, computes and stores done = g (release); main acquires done before it reads the
 * helper's rows. A job is only rewritten after its step is finished, and a helper whose
 * CAS fails touches nothing. The three counters sit on their own cache lines.
 *
 * Threads are POSIX threads: the team lives across the whole training loop, which an
 * OpenMP parallel region could only do by moving the loop into it. Elsewhere
 * charrnn_split_start returns 0 and the caller runs on one thread.
 */
#ifndef CHARRNN_SPLIT_H
#define CHARRNN_SPLIT_H

#include <stdint.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#define CHARRNN_SPLIT_THREADS 1
#include <pthread.h>
#include <sched.h>
#include <time.h>
#else
#define CHARRNN_SPLIT_THREADS 0
#endif

#define CHARRNN_SPLIT_CLAIM_NS 1000        /* main waits this long for the helper's claim */
#define CHARRNN_SPLIT_LATE_NS 30000        /* a claimed half this much later than main's
                                              own half took is late */
#define CHARRNN_SPLIT_SPIN_NS 3000000      /* helper: pause-spin this long after its last step, */
#define CHARRNN_SPLIT_YIELD_NS 200000000   /* then yield the core until this, then nap */
#define CHARRNN_SPLIT_NAP_NS 50000
#define CHARRNN_SPLIT_WINDOW 256           /* steps per window of the fallback rule */
#define CHARRNN_SPLIT_MAX_LOST 32          /* fall back past 1/32 of a window's time lost */
#define CHARRNN_SPLIT_MIN_WINDOW_NS 500000 /* (counting at least this much time) */
#define CHARRNN_SPLIT_STATS 7

/* test_mode (tests/test_split.py): 0 normal; 1 the helper never claims a half; 2 the
 * helper claims and then stalls 60 us before computing; 3 the helper claims after a
 * varying delay of 0-3 us and main never falls back (halves go both ways, many times);
 * 4 main waits for the helper's claim however long it takes (the helper computes every
 * second half). */
typedef void (*charrnn_split_work)(void *job, int half);

typedef struct {
    _Alignas(64) int64_t published;
    _Alignas(64) int64_t claimed;
    _Alignas(64) int64_t done;
    _Alignas(64) int stop;
    /* main's own state (the helper only reads work, job and test_mode) */
    _Alignas(64) charrnn_split_work work;
    void *job;
    int test_mode, active, started, arrived, present;
    int64_t next, lost, window_t0, t_start;
    int64_t stats[CHARRNN_SPLIT_STATS];  /* see charrnn_split_finish */
#if CHARRNN_SPLIT_THREADS
    pthread_t thread;
#endif
} charrnn_split;

static inline void charrnn_split_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#if CHARRNN_SPLIT_THREADS

static inline int64_t charrnn_split_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void charrnn_split_busy(int64_t ns)
{
    int64_t t0 = charrnn_split_now();
    while (charrnn_split_now() - t0 < ns) charrnn_split_pause();
}

static void *charrnn_split_helper(void *arg)
{
    charrnn_split *s = (charrnn_split *)arg;
    int64_t last = -1, idle_since = charrnn_split_now(), idle;
    uint32_t jitter = 12345;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        int64_t g = __atomic_load_n(&s->published, __ATOMIC_ACQUIRE), expect = g - 1;
        if (g == last || s->test_mode == 1) {
            idle = charrnn_split_now() - idle_since;
            if (idle < CHARRNN_SPLIT_SPIN_NS) {
                charrnn_split_pause();
            } else if (idle < CHARRNN_SPLIT_YIELD_NS) {
                sched_yield();
            } else {
                struct timespec nap = {0, CHARRNN_SPLIT_NAP_NS};
                nanosleep(&nap, NULL);
            }
            continue;
        }
        last = g;
        if (s->test_mode == 3) {
            jitter = jitter * 1103515245u + 12345u;
            charrnn_split_busy((jitter >> 16) % 3000);
        }
        if (__atomic_compare_exchange_n(&s->claimed, &expect, g, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            if (s->test_mode == 2)
                charrnn_split_busy(60000);
            s->work(s->job, 1);
            __atomic_store_n(&s->done, g, __ATOMIC_RELEASE);
        }
        idle_since = charrnn_split_now();
    }
    return NULL;
}

#endif

/* Start the helper. Returns whether the steps will be split (else charrnn_split_step
 * computes both halves on the calling thread). */
static int charrnn_split_start(charrnn_split *s, charrnn_split_work work, void *job,
                               int test_mode)
{
    memset(s, 0, sizeof *s);
    s->published = s->claimed = s->done = -1;
    s->work = work;
    s->job = job;
    s->test_mode = test_mode;
    s->stats[3] = -1;
#if CHARRNN_SPLIT_THREADS
    s->t_start = charrnn_split_now();
    if (pthread_create(&s->thread, NULL, charrnn_split_helper, s) == 0)
        s->started = s->active = 1;
#endif
    return s->active;
}

/* One step: both halves of the job, on two threads while the split is active. */
static void charrnn_split_step(charrnn_split *s)
{
#if CHARRNN_SPLIT_THREADS
    int64_t g, t0, expect, waited, window, own;
    if (!s->active) {
        s->work(s->job, 0);
        s->work(s->job, 1);
        return;
    }
    g = s->next++;
    s->stats[0]++;
    if (g % CHARRNN_SPLIT_WINDOW == 0) {
        s->lost = 0;
        s->window_t0 = charrnn_split_now();
    }
    __atomic_store_n(&s->published, g, __ATOMIC_RELEASE);
    own = charrnn_split_now();
    s->work(s->job, 0);
    own = charrnn_split_now() - own;          /* main's half took this long */
    /* Main waits for a claim only if the helper computed the step before: a helper
     * that has not started yet (a new thread may wait milliseconds for a core) or is
     * off its core costs main nothing until it claims a half again. A helper that has
     * not come within a window's steps counts as never coming. */
    waited = 0;  /* only a real wait counts as lost (not the clock reads) */
    if (s->present || s->test_mode == 4) {
        t0 = charrnn_split_now();
        while (__atomic_load_n(&s->claimed, __ATOMIC_ACQUIRE) != g
               && (s->test_mode == 4 || charrnn_split_now() - t0 < CHARRNN_SPLIT_CLAIM_NS))
            charrnn_split_pause();
        waited = charrnn_split_now() - t0;
    }
    expect = g - 1;
    if (__atomic_compare_exchange_n(&s->claimed, &expect, g, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        s->work(s->job, 1);                   /* the helper is late: do it here */
        s->stats[2]++;
        s->lost += waited;
        s->stats[4] += waited;
        s->stats[6] = waited > s->stats[6] ? waited : s->stats[6];
        s->present = 0;
    } else {
        s->arrived = s->present = 1;
        t0 = charrnn_split_now();
        while (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != g)
            charrnn_split_pause();
        s->stats[1]++;
        /* lost: the wait beyond the time main would have taken for the half itself */
        t0 = charrnn_split_now() - t0 - own;
        if (t0 > CHARRNN_SPLIT_LATE_NS) {
            s->lost += t0;
            s->stats[4] += t0;
            s->stats[6] = t0 > s->stats[6] ? t0 : s->stats[6];
        }
    }
    window = charrnn_split_now() - s->window_t0;
    window = window > CHARRNN_SPLIT_MIN_WINDOW_NS ? window : CHARRNN_SPLIT_MIN_WINDOW_NS;
    if ((s->lost * CHARRNN_SPLIT_MAX_LOST > window
         || (!s->arrived && s->next == CHARRNN_SPLIT_WINDOW)) && s->test_mode < 3) {
        s->active = 0;                        /* the other core is busy: one thread */
        s->stats[3] = g;
        s->stats[5] = charrnn_split_now() - s->t_start;
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    }
#else
    s->work(s->job, 0);
    s->work(s->job, 1);
#endif
}

/* Stop and join the helper; stats (CHARRNN_SPLIT_STATS,) receives, unless NULL: the
 * steps, the halves the helper computed, the halves main took over, the step main fell
 * back to one thread at (-1: never), the nanoseconds main lost (counted as the
 * fallback rule counts them), the nanoseconds the split was active (from the start to
 * the fallback or the end), and the longest single loss. While active, the rule keeps
 * the loss of each window below 1/32 of its time (or of 0.5 ms), so that a run on a
 * busy machine loses at most about 3% to the split before it stops splitting, plus the
 * one wait that made it stop (tests/test_split.py checks this under contention). */
static void charrnn_split_finish(charrnn_split *s, int64_t *stats)
{
#if CHARRNN_SPLIT_THREADS
    if (s->active)
        s->stats[5] = charrnn_split_now() - s->t_start;
    if (s->started) {
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
        pthread_join(s->thread, NULL);
        s->started = s->active = 0;
    }
#endif
    if (stats)
        memcpy(stats, s->stats, sizeof s->stats);
}

#endif
