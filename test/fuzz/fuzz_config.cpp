// rdtmond's configuration file parser. Invariants: only rdtmon::Error(InvalidArgument)
// escapes; an accepted config has an absolute resctrl path, positive intervals and every
// source holding exactly one of stateDirs / command.

#include "Config.h"
#include "FuzzCommon.h"

using namespace rdtmon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(fuzz::asText(data, size));
    try {
        Config c = parseConfig(text);
        if (c.resctrlPath.empty() || c.resctrlPath[0] != '/') {
            fuzz::finding("accepted a relative resctrl path");
        }
        if (c.gcInterval.count() <= 0 || c.gcGrace.count() < 0) {
            fuzz::finding("accepted a non-positive interval or a negative grace");
        }
        for (const SourceConfig& s : c.sources) {
            if (s.stateDirs.empty() == s.command.empty()) {
                fuzz::finding("a source with both or neither of stateDirs/command");
            }
        }
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::InvalidArgument) {
            fuzz::finding("parseConfig threw a kind other than InvalidArgument");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "parseConfig threw a foreign exception: %s\n", e.what());
        std::abort();
    }
    return 0;
}
