#include "ThreadNice.h"

#include <cerrno>
#include <sys/resource.h>
#include <unistd.h>

namespace rdtmon {

int setThisThreadNice(int nice) {
    return ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) == 0 ? 0 : errno;
}

} // namespace rdtmon
