#include "ManagerBus.h"

#include "Errors.h"

namespace rdtmon::hook {

CallError errnoError(int r, const std::string& what) {
    sd_bus_error e{}; // SD_BUS_ERROR_NULL, without its C99 compound literal
    sd_bus_error_set_errno(&e, r < 0 ? -r : r);
    CallError out{e.name != nullptr ? e.name : rdtmon::errorName(rdtmon::ErrorKind::Failed),
                  what + ": " + rdtmon::errnoText(r < 0 ? -r : r)};
    sd_bus_error_free(&e);
    return out;
}

int appendLabels(sd_bus_message* m, const rdtmon::Labels& labels) {
    int r = sd_bus_message_open_container(m, 'a', "{ss}");
    for (auto it = labels.begin(); r >= 0 && it != labels.end(); ++it) {
        r = sd_bus_message_append(m, "{ss}", it->first.c_str(), it->second.c_str());
    }
    return r < 0 ? r : sd_bus_message_close_container(m);
}

} // namespace rdtmon::hook
