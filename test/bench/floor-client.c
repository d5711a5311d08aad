/* The floor for a hook that must be a D-Bus client: the hook's AddContainer call made with
 * sd-bus and nothing else. No OCI state, no bundle, no checks: pidfd_open of the pid,
 * connect to the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured), one call, read the reply's
 * state as the hook does, exit.
 *
 *   rdtmon-floor-client ID PID [KEY VALUE]...     exit 0 when the call succeeded
 *
 * rdtmon-bench runs it alternately with rdtmon-hook create on the same bus: the ratio of
 * their medians is what the hook's own work (and its C++) costs a container start. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 3 || argc % 2 != 1) {
        fprintf(stderr, "usage: rdtmon-floor-client ID PID [KEY VALUE]...\n");
        return 2;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, atoi(argv[2]), 0);
    if (pidfd < 0) {
        fprintf(stderr, "pidfd_open: %s\n", strerror(errno));
        return 1;
    }
    sd_bus* bus = NULL;
    sd_bus_message* m = NULL;
    sd_bus_message* reply = NULL;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r = sd_bus_open_system(&bus);
    if (r >= 0) {
        r = sd_bus_message_new_method_call(bus, &m, "org.rdtmon1", "/org/rdtmon1",
                                           "org.rdtmon1.Manager", "AddContainer");
    }
    if (r >= 0) {
        r = sd_bus_message_append(m, "sh", argv[1], pidfd);
    }
    if (r >= 0) {
        r = sd_bus_message_open_container(m, 'a', "{ss}");
    }
    for (int i = 3; r >= 0 && i + 1 < argc; i += 2) {
        r = sd_bus_message_append(m, "{ss}", argv[i], argv[i + 1]);
    }
    if (r >= 0) {
        r = sd_bus_message_close_container(m);
    }
    if (r >= 0) {
        r = sd_bus_call(bus, m, 5 * 1000 * 1000, &error, &reply);
    }
    if (r >= 0) {
        const char* path = NULL;
        const char* state = NULL;
        r = sd_bus_message_read(reply, "os", &path, &state);
        if (r >= 0 && strcmp(state, "waiting") == 0) {
            fprintf(stderr, "%s waits for an RMID\n", argv[1]);
        }
    }
    if (r < 0) {
        fprintf(stderr, "AddContainer: %s: %s\n", error.name ? error.name : "-",
                error.message ? error.message : strerror(-r));
    }
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
    sd_bus_message_unref(m);
    sd_bus_close_unref(bus);
    close(pidfd);
    return r < 0 ? 1 : 0;
}
