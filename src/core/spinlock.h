/* SPDX-License-Identifier: MIT */
/*
 * A tiny spinlock on an atomic_flag, for critical sections of a few
 * instructions shared by worker threads (token buckets, a key's live
 * counters): spin with a CPU pause hint, and yield once the holder has
 * evidently been preempted. Never hold it across a call that can block.
 */
#ifndef LG_CORE_SPINLOCK_H
#define LG_CORE_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

static inline void lg_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void lg_spin_lock(atomic_flag *l)
{
    unsigned spins = 0;
    while (atomic_flag_test_and_set_explicit(l, memory_order_acquire)) {
        /* the holder is a few instructions from releasing unless it was preempted: then yield */
        if (++spins < 64)
            lg_cpu_relax();
        else
            sched_yield();
    }
}

static inline void lg_spin_unlock(atomic_flag *l)
{
    atomic_flag_clear_explicit(l, memory_order_release);
}

#endif
