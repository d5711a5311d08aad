// The hook's OCI state parser (stdin), the container id peek for failure lines and the
// printable() rendering. Invariants: only rdtmon::Error escapes; an accepted state has a
// valid id and, for create, a pid > 0; peekContainerId/printable give printable ASCII.

#include "ContainerId.h"
#include "FuzzCommon.h"
#include "OciState.h"

using namespace rdtmon;

namespace {

bool isPrintableAscii(std::string_view s) {
    for (char c : s) {
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::asText(data, size);
    for (bool requirePid : {true, false}) {
        fuzz::expectOnlyRdtmonErrors("parseOciState", [&] {
            OciState st = parseOciState(text, requirePid);
            if (!isValidContainerId(st.id)) {
                fuzz::finding("parseOciState accepted an invalid container id");
            }
            if (requirePid && (!st.pid || *st.pid <= 0)) {
                fuzz::finding("parseOciState(create) accepted a state without a positive pid");
            }
            if (!requirePid && st.pid && *st.pid <= 0) {
                fuzz::finding("parseOciState(delete) kept a non-positive pid");
            }
            (void)skipReason(st);
        });
    }
    if (!isPrintableAscii(peekContainerId(text))) {
        fuzz::finding("peekContainerId returned unprintable text");
    }
    const std::string p = printable(text, 200);
    if (!isPrintableAscii(p) || p.size() > 200 * 4 + 3) {
        fuzz::finding("printable() returned unprintable or unbounded text");
    }
    return 0;
}
