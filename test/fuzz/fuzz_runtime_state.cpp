// The runtimes' state files read for adoption (runc's state.json; crun's status and its
// config.json copy, split at the first NUL byte of the input). Invariants: only
// rdtmon::Error escapes; an accepted file has a pid in 1..INT32_MAX and a start time.

#include "FuzzCommon.h"
#include "RuntimeState.h"

#include <cstdint>

using namespace rdtmon;

namespace {

void check(const RuntimeContainer& c) {
    if (c.pid == 0 || c.pid > static_cast<uint32_t>(INT32_MAX) || c.startTime == 0) {
        fuzz::finding("a state file without a valid pid or start time was accepted");
    }
    (void)notAdoptableReason(c);
    (void)runtimeLabels(c);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::asText(data, size);
    fuzz::expectOnlyRdtmonErrors("parseRuncState", [&] { check(parseRuncState(text, "c1")); });
    const std::size_t nul = text.find('\0');
    const std::string_view status = text.substr(0, nul);
    const std::string_view config =
        nul == std::string_view::npos ? std::string_view("{}") : text.substr(nul + 1);
    fuzz::expectOnlyRdtmonErrors("parseCrunStatus",
                                 [&] { check(parseCrunStatus(status, config, "c1")); });
    return 0;
}
