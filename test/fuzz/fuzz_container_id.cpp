// Container id validation. Invariants: isValidContainerId agrees with validateContainerId
// and with an independent re-statement of the contract (1..128 of [A-Za-z0-9_.-], not "."
// or "..", not info/mon_groups/mon_data); an accepted id can never name a path outside
// its mon_groups directory.

#include "ContainerId.h"
#include "FuzzCommon.h"

using namespace rdtmon;

namespace {

bool contract(std::string_view id) {
    if (id.empty() || id.size() > 128 || id == "." || id == ".." || id == "info" ||
        id == "mon_groups" || id == "mon_data") {
        return false;
    }
    for (char c : id) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view id = fuzz::asText(data, size);
    const bool valid = isValidContainerId(id);
    if (valid != contract(id)) {
        fuzz::finding("isValidContainerId disagrees with the contract");
    }
    bool threw = false;
    try {
        validateContainerId(id);
    } catch (const Error& e) {
        threw = true;
        if (e.kind() != ErrorKind::InvalidArgument) {
            fuzz::finding("validateContainerId threw a kind other than InvalidArgument");
        }
    }
    if (threw == valid) {
        fuzz::finding("validateContainerId disagrees with isValidContainerId");
    }
    if (valid &&
        (id.find('/') != std::string_view::npos || id.find('\0') != std::string_view::npos)) {
        fuzz::finding("a valid id holds a path separator or NUL");
    }
    return 0;
}
