#include "CMapGuard.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

// A handful of environments at once at most (a command, its scratch views, `diff`'s second
// database); the handler reads the slots without locks, so each range is published with
// release stores and its message written before it is.
enum { slot_count = 16, message_capacity = 1024 };

struct slot {
    _Atomic(const void *) owner;
    _Atomic uintptr_t start;
    _Atomic uintptr_t end;
    char message[message_capacity];
    _Atomic size_t length;
};

static struct slot slots[slot_count];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static struct sigaction previous_bus, previous_segv;

static void on_fault(int signal_number, siginfo_t *info, void *context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < slot_count; i++) {
        uintptr_t start = atomic_load_explicit(&slots[i].start, memory_order_acquire);
        uintptr_t end = atomic_load_explicit(&slots[i].end, memory_order_acquire);
        if (start < end && address >= start && address < end) {
            size_t length = atomic_load_explicit(&slots[i].length, memory_order_acquire);
            ssize_t ignored = write(2, slots[i].message, length);
            (void)ignored;
            _exit(1);
        }
    }
    // Not a read of a guarded map: what would have happened without this handler.
    struct sigaction *previous = signal_number == SIGBUS ? &previous_bus : &previous_segv;
    sigaction(signal_number, previous, NULL);
    if (info->si_code <= 0) {
        raise(signal_number);  // sent by kill(2): returning would not repeat it
    } else if (!(previous->sa_flags & SA_SIGINFO) && previous->sa_handler == SIG_IGN) {
        signal(signal_number, SIG_DFL);  // a fault cannot be ignored: returning would loop
    }
    (void)context;
}

static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous_bus);
    sigaction(SIGSEGV, &action, &previous_segv);
}

int evindex_guard_mapping(const void *owner, const void *start, size_t length, const char *message) {
    pthread_once(&install_once, install);
    pthread_mutex_lock(&slots_lock);
    int found = -1;
    for (int i = 0; i < slot_count && found < 0; i++) {
        if (atomic_load(&slots[i].owner) == owner) found = i;
    }
    for (int i = 0; i < slot_count && found < 0; i++) {
        if (atomic_load(&slots[i].owner) == NULL) found = i;
    }
    if (found >= 0) {
        struct slot *s = &slots[found];
        atomic_store_explicit(&s->end, 0, memory_order_release);
        size_t n = strlen(message);
        if (n > message_capacity - 1) n = message_capacity - 1;
        memcpy(s->message, message, n);
        s->message[n] = '\n';
        atomic_store_explicit(&s->length, n + 1, memory_order_release);
        atomic_store_explicit(&s->owner, owner, memory_order_release);
        atomic_store_explicit(&s->start, (uintptr_t)start, memory_order_release);
        atomic_store_explicit(&s->end, (uintptr_t)start + length, memory_order_release);
    }
    pthread_mutex_unlock(&slots_lock);
    return found >= 0 ? 0 : -1;
}

void evindex_unguard_mapping(const void *owner) {
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < slot_count; i++) {
        if (atomic_load(&slots[i].owner) == owner) {
            atomic_store_explicit(&slots[i].end, 0, memory_order_release);
            atomic_store_explicit(&slots[i].start, 0, memory_order_release);
            atomic_store(&slots[i].owner, NULL);
        }
    }
    pthread_mutex_unlock(&slots_lock);
}
