/* A process with several threads that only sleep: the booted-system test runs it as a
 * non-root user inside the guest and checks that CreateGroup moved every thread. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void* sleeper(void* arg) {
    (void)arg;
    for (;;) {
        pause();
    }
    return NULL;
}

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    for (int i = 0; i < n; ++i) {
        pthread_t t;
        if (pthread_create(&t, NULL, sleeper, NULL) != 0) {
            return 1;
        }
    }
    for (;;) {
        pause();
    }
}
