#pragma once

// Shared by the libFuzzer targets: every parser under fuzz may only fail with
// rdtmon::Error; any other exception (a nlohmann or std one escaping) is a finding.

#include "Errors.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace rdtmon::fuzz {

inline std::string_view asText(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

// Runs f; an rdtmon::Error is the expected way to refuse input, anything else aborts.
template <class F> void expectOnlyRdtmonErrors(const char* what, F&& f) {
    try {
        f();
    } catch (const rdtmon::Error&) {
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s threw a foreign exception: %s\n", what, e.what());
        std::abort();
    } catch (...) {
        std::fprintf(stderr, "%s threw a non-std exception\n", what);
        std::abort();
    }
}

[[noreturn]] inline void finding(const char* what) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
}

} // namespace rdtmon::fuzz
